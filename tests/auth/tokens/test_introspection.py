"""RFC 7662 introspection."""

from __future__ import annotations

import asyncio
import base64
import time

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID
from medmesh.platform.tokens import SigningKey
from tests.auth.conftest import ISSUER, AuthFactory, AuthHarness, basic_header, claims_of


async def test_active_access_token(auth: AuthHarness) -> None:
    token = await auth.access_token(scope="system/Observation.rs")
    body = await auth.introspect(token)
    claims = claims_of(token)
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    for name in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "roles"):
        assert body[name] == claims[name]
    assert body["scope"] == "system/Observation.rs"


async def test_expired_token_is_inactive(auth: AuthHarness) -> None:
    now = int(time.time())
    claims = {
        **claims_of(await auth.access_token()),
        "iat": now - 3600,
        "nbf": now - 3600,
        "exp": now - 1800,
    }
    expired = auth.app.state.auth.keys.signer.sign(claims)
    assert await auth.introspect(expired) == {"active": False}


async def test_not_yet_valid_and_foreign_issuer_are_inactive(auth: AuthHarness) -> None:
    signer = auth.app.state.auth.keys.signer
    base = claims_of(await auth.access_token())
    future = signer.sign({**base, "nbf": int(time.time()) + 3600})
    foreign = signer.sign({**base, "iss": "http://evil.test"})
    assert await auth.introspect(future) == {"active": False}
    assert await auth.introspect(foreign) == {"active": False}


async def test_forged_signatures_are_inactive(auth: AuthHarness) -> None:
    token = await auth.access_token()
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    flipped = ".".join([head, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])
    assert await auth.introspect(flipped) == {"active": False}

    # HS256 "signed" with the published RSA public key (the classic algorithm confusion).
    jwks = (await auth.http.get("/.well-known/jwks.json")).json()
    public = str(jwks["keys"][0]).encode() * 2
    confused = SigningKey.hs256(public, kid=jwks["keys"][0]["kid"]).sign(claims_of(token))
    assert await auth.introspect(confused) == {"active": False}

    # alg: none
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    assert await auth.introspect(f"{none_head}.{payload}.") == {"active": False}

    # A payload changed under the original signature.
    tampered_claims = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "==").replace(b'"service"', b'"admin__"')
        )
        .rstrip(b"=")
        .decode()
    )
    assert await auth.introspect(f"{head}.{tampered_claims}.{signature}") == {"active": False}

    # A well-formed token from an unknown key.
    stranger = SigningKey.generate_rsa().sign({**claims_of(token), "iss": ISSUER})
    assert await auth.introspect(stranger) == {"active": False}


async def test_garbage_is_inactive(auth: AuthHarness) -> None:
    for garbage in ("garbage", "a.b.c", "mmrt_nope", "x" * 5000, "eyJ.eyJ.", "é"):
        assert await auth.introspect(garbage) == {"active": False}


async def test_revoked_token_is_inactive(auth: AuthHarness) -> None:
    token = await auth.access_token()
    response = await auth.http.post(
        "/oauth/revoke", data={"token": token}, headers=auth.basic(DEMO_SERVICE_CLIENT_ID)
    )
    assert response.status_code == 200
    assert await auth.introspect(token) == {"active": False}


async def test_unauthenticated_caller_is_refused(auth: AuthHarness) -> None:
    token = await auth.access_token()
    response = await auth.http.post("/oauth/introspect", data={"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers
    wrong = await auth.http.post(
        "/oauth/introspect",
        data={"token": token},
        headers=basic_header(DEMO_SERVICE_CLIENT_ID, "mmcs_wrong"),
    )
    assert wrong.status_code == 401


async def test_missing_token_parameter(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/introspect", data={}, headers=auth.basic(DEMO_SERVICE_CLIENT_ID)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_refresh_token_introspection_by_owner_only(auth: AuthHarness) -> None:
    session = (await auth.login()).json()
    refresh = session["refresh_token"]
    owner = await auth.introspect(refresh, client_id=CLI_CLIENT_ID)
    assert owner["active"] is True
    assert owner["token_type"] == "refresh_token"
    assert owner["client_id"] == CLI_CLIENT_ID
    assert owner["sub"] == claims_of(session["access_token"])["sub"]
    assert owner["exp"] > time.time() + 86_400
    assert await auth.introspect(refresh, client_id=DEMO_SERVICE_CLIENT_ID) == {"active": False}
    # Once rotated, the old refresh token is inactive for its owner too.
    assert (await auth.refresh(refresh)).status_code == 200
    assert await auth.introspect(refresh, client_id=CLI_CLIENT_ID) == {"active": False}


async def test_introspection_response_is_not_cached(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/introspect", data={"token": "x"}, headers=auth.basic(DEMO_SERVICE_CLIENT_ID)
    )
    assert response.headers["cache-control"] == "no-store"


async def test_a_burst_larger_than_the_connection_pool_is_answered(
    auth_factory: AuthFactory,
) -> None:
    # Every request looks its client up and re-syncs revocations: neither may hold the request's
    # connection while waiting for a second one, or a burst waits on itself until the pool
    # times out (found by bench/auth).
    async with auth_factory(client_cache_seconds=0, revocation_sync_seconds=0) as auth:
        token = await auth.access_token()
        answers = await asyncio.wait_for(
            asyncio.gather(*(auth.introspect(token) for _ in range(60))), timeout=20
        )
    assert all(answer["active"] is True for answer in answers)
