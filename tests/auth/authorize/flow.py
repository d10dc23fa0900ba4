"""Drives the sign-in pages as a browser would (forms, cookies), for the authorize tests."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.auth.conftest import AuthHarness

REDIRECT_URI = "https://app.example/callback"
APP_SCOPE = (
    "openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs"
)
PATIENT_PASSWORD = "a long enough password"
_INPUT = re.compile(r'<input type="(?:hidden|checkbox)"[^>]*name="([^"]+)"[^>]*value="([^"]*)"')


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_fields(page: str) -> list[tuple[str, str]]:
    """The hidden fields and ticked boxes of a page's form, as the browser would send them."""
    return [(name, html.unescape(value)) for name, value in _INPUT.findall(page)]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class App:
    """A registered SMART app (public unless it has a secret) and one launch of it."""

    client_id: str
    secret: str | None = None
    verifier: str = ""
    challenge: str = ""
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def __post_init__(self) -> None:
        self.verifier, self.challenge = pkce()

    def params(self, **overrides: str) -> dict[str, str]:
        values = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": APP_SCOPE,
            "state": self.state,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            "nonce": "n-0S6_WzA2Mj",
            "aud": "http://127.0.0.1:8002/fhir",
        }
        values.update(overrides)
        return {k: v for k, v in values.items() if v != ""}


async def register_app(auth: AuthHarness, *, public: bool = True, **fields: Any) -> App:
    body = await auth.create_client(
        name="Growth chart",
        grant_types=["authorization_code", "refresh_token"],
        scope=APP_SCOPE,
        public=public,
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=["https://app.example/bye"],
        **fields,
    )
    return App(body["client_id"], body["client_secret"])


async def create_patient(auth: AuthHarness, username: str = "pat") -> dict[str, Any]:
    return await auth.create_user(
        username,
        PATIENT_PASSWORD,
        roles=["patient"],
        patient_id="pat-1",
        fhir_user="Patient/pat-1",
    )


async def post_form(
    http: httpx.AsyncClient, path: str, fields: list[tuple[str, str]]
) -> httpx.Response:
    """Post a form whose names may repeat (checkboxes), as a browser sends it."""
    return await http.post(
        path,
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def login(
    http: httpx.AsyncClient, page: httpx.Response, username: str, password: str
) -> httpx.Response:
    fields = [*form_fields(page.text), ("username", username), ("password", password)]
    return await post_form(http, "/oauth/authorize/login", fields)


async def consent(
    http: httpx.AsyncClient, page: httpx.Response, *, untick: tuple[str, ...] = ()
) -> httpx.Response:
    fields = [(n, v) for n, v in form_fields(page.text) if not (n == "grant" and v in untick)]
    return await post_form(http, "/oauth/authorize/consent", [*fields, ("decision", "allow")])


async def authorize(
    http: httpx.AsyncClient,
    app: App,
    *,
    username: str = "pat",
    password: str = PATIENT_PASSWORD,
    untick: tuple[str, ...] = (),
    **overrides: str,
) -> str:
    """Run the whole launch; returns the code the app receives (checking ``state``)."""
    page = await http.get("/oauth/authorize", params=app.params(**overrides))
    assert page.status_code == 200, page.text
    if 'action="/oauth/authorize/login"' in page.text:
        signed_in = await login(http, page, username, password)
        assert signed_in.status_code == 303, signed_in.text
        page = await http.get(signed_in.headers["location"])
    if page.status_code == 200:
        page = await consent(http, page, untick=untick)
    assert page.status_code == 303, page.text
    location = page.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    query = query_of(location)
    assert query["state"] == app.state
    return query["code"]


async def exchange(
    http: httpx.AsyncClient, app: App, code: str, **overrides: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": app.verifier,
        "client_id": app.client_id,
        **overrides,
    }
    if app.secret is not None:
        data["client_secret"] = app.secret
    return await http.post("/oauth/token", data={k: v for k, v in data.items() if v != ""})
