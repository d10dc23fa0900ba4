"""Hostile and malformed input to the OAuth endpoints: always 4xx, nothing stored."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID
from tests.auth.conftest import AuthHarness

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _post_raw(
    auth: AuthHarness, body: bytes, client_id: str = CLI_CLIENT_ID, **headers: str
) -> httpx.Response:
    return await auth.http.post(
        "/oauth/token", content=body, headers={**FORM, **auth.basic(client_id), **headers}
    )


async def test_repeated_parameter(auth: AuthHarness) -> None:
    before = await auth.counts()
    response = await _post_raw(
        auth, b"grant_type=client_credentials&scope=a&scope=b", DEMO_SERVICE_CLIENT_ID
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await auth.counts() == before


CONTENT_TYPES = ["application/json", "text/plain", "multipart/form-data; boundary=x", ""]

MALFORMED_BODIES = [
    b"grant_type",  # no '='
    b"grant_type=password&&&",
    b"\xff\xfe\x00garbage",
    b"grant_type=password&username=%ED%A0%80&password=x",  # lone surrogate, percent-encoded
    b"grant_type=password&username=%C0%AF&password=x",  # overlong UTF-8
    b"grant_type=password&username=ad%00min&password=x",  # NUL
    b"grant_type=password&username=admin%0d%0aX-Injected:1&password=x",  # CRLF
    b"&".join(b"f%d=1" % i for i in range(100)),  # too many fields
    b"grant_type=password&username=" + b"a" * 9000 + b"&password=x",  # too long a value
]

ODD_USERNAMES = [
    "' OR '1'='1",
    "admin'--",
    'admin"; DROP TABLE users; --',
    "admin\u202e",  # RTL override
    "\u202eadmin",
    "adm\u200bin",  # zero-width space
    "\U0001f469\u200d\u2695\ufe0fdoctor",  # emoji ZWJ sequence
    "\uff21\uff44\uff4d\uff49\uff4e",  # fullwidth "Admin"
    "admin%",
    "a" * 5000,
    "\u0430dmin",  # Cyrillic a
]

ODD_CLIENT_IDS = ["demo%00service", "' OR 1=1 --", "x" * 300, "d\u202eemo", "\U0001f600"]

ODD_SCOPES = [
    ("openid\u0000", "invalid_request"),  # a control character
    ("openid%", "invalid_scope"),
    ("' OR 1=1", "invalid_scope"),
    ("user/Patient.rs?category=\u202e", "invalid_scope"),
    ("a" * 5000, "invalid_scope"),
    ("\U0001f642", "invalid_scope"),
]


async def test_wrong_content_type(auth: AuthHarness) -> None:
    for content_type in CONTENT_TYPES:
        response = await auth.http.post(
            "/oauth/token",
            content=b'{"grant_type": "client_credentials"}',
            headers={"Content-Type": content_type, **auth.basic(DEMO_SERVICE_CLIENT_ID)},
        )
        assert response.status_code == 400, content_type
        assert response.json()["error"] == "invalid_request"


async def test_content_type_with_charset_is_accepted(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials",
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            **auth.basic(DEMO_SERVICE_CLIENT_ID),
        },
    )
    assert response.status_code == 200


async def test_malformed_bodies(auth: AuthHarness) -> None:
    before = await auth.counts()
    for body in MALFORMED_BODIES:
        response = await _post_raw(auth, body)
        assert response.status_code == 400, (body[:60], response.text)
        assert response.json()["error"] == "invalid_request"
    assert await auth.counts() == before


async def test_oversized_body_is_413(auth: AuthHarness) -> None:
    before = await auth.counts()
    limit = auth.settings.max_body_bytes
    body = b"grant_type=password&username=admin&password=" + b"x" * limit
    response = await _post_raw(auth, body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"grant_type=password&password="
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    streamed = await auth.http.post(
        "/oauth/token",
        content=chunks(),
        headers={**FORM, **auth.basic(CLI_CLIENT_ID)},
    )
    assert streamed.status_code == 413
    assert await auth.counts() == before


async def test_odd_usernames_are_refused_and_store_nothing(auth: AuthHarness) -> None:
    before = await auth.counts()
    for username in ODD_USERNAMES:
        response = await auth.login(username, "whatever")
        assert response.status_code == 400, (username[:40], response.text)
        assert response.json()["error"] == "invalid_grant"
    assert await auth.counts() == before
    # The real admin is unaffected (each odd name has its own failure counter).
    assert (await auth.login()).status_code == 200


async def test_odd_client_ids_are_invalid_client(auth: AuthHarness) -> None:
    before = await auth.counts()
    for client_id in ODD_CLIENT_IDS:
        raw = f"{client_id}:{auth.boot.clients[DEMO_SERVICE_CLIENT_ID]}".encode()
        response = await auth.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
        )
        assert response.status_code == 401, (client_id[:40], response.text)
        assert response.json()["error"] == "invalid_client"
        body_response = await auth.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id.replace("%00", "\u202e"),
                "client_secret": "mmcs_x",
            },
        )
        assert body_response.status_code == 401, (client_id[:40], body_response.text)
    assert await auth.counts() == before


async def test_odd_scopes(auth: AuthHarness) -> None:
    before = await auth.counts()
    for scope, error in ODD_SCOPES:
        response = await auth.token(scope=scope)
        assert response.status_code == 400, (scope[:40], response.text)
        assert response.json()["error"] == error, scope[:40]
    assert await auth.counts() == before


async def test_odd_refresh_tokens(auth: AuthHarness) -> None:
    before = await auth.counts()
    for value in ("mmrt_' OR 1=1 --", "mmrt_\u202e", "mmrt_" + "a" * 8000, "🙂"):
        response = await auth.refresh(value)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_grant"
    assert await auth.counts() == before
