"""OpenID Connect: the ID token verifies from the JWKS (PyJWT), carries nonce, azp and at_hash;
Authlib's OAuth2 client with PKCE completes the flow; userinfo answers for the token."""

from __future__ import annotations

import base64
import hashlib
import warnings

import httpx
import jwt as pyjwt
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning

from tests.auth.authorize.flow import (
    APP_SCOPE,
    PATIENT_PASSWORD,
    REDIRECT_URI,
    authorize,
    consent,
    create_patient,
    exchange,
    login,
    register_app,
)
from tests.auth.conftest import ISSUER, AuthHarness, bearer

with warnings.catch_warnings():
    # Authlib 1.9 announces its move to httpx2 when the httpx integration is imported.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client


async def test_pyjwt_verifies_the_id_token_from_the_jwks(auth: AuthHarness) -> None:
    app = await register_app(auth)
    patient = await create_patient(auth)
    body = (await exchange(auth.http, app, await authorize(auth.http, app))).json()
    jwks = (await auth.http.get("/.well-known/jwks.json")).json()
    header = pyjwt.get_unverified_header(body["id_token"])
    key = pyjwt.PyJWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = pyjwt.decode(
        body["id_token"],
        key=key.key,
        algorithms=[header["alg"]],
        audience=app.client_id,
        issuer=ISSUER,
    )
    assert claims["sub"] == patient["id"]
    assert claims["azp"] == app.client_id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["fhirUser"] == "Patient/pat-1"
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


async def test_userinfo_answers_for_the_apps_token(auth: AuthHarness) -> None:
    app = await register_app(auth)
    patient = await create_patient(auth)
    body = (await exchange(auth.http, app, await authorize(auth.http, app))).json()
    info = await auth.http.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.status_code == 200
    assert info.json()["sub"] == patient["id"]
    assert info.json()["fhirUser"] == "Patient/pat-1"


async def test_authlib_completes_the_flow_with_pkce(auth: AuthHarness) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    transport = httpx.ASGITransport(app=auth.app, client=("203.0.113.9", 50000))
    async with AsyncOAuth2Client(
        client_id=app.client_id,
        token_endpoint_auth_method="none",
        redirect_uri=REDIRECT_URI,
        scope=APP_SCOPE,
        code_challenge_method="S256",
        transport=transport,
        base_url=ISSUER,
    ) as oauth:
        verifier = generate_token(48)
        url, state = oauth.create_authorization_url(
            f"{ISSUER}/oauth/authorize",
            code_verifier=verifier,
            nonce="authlib-nonce",
            aud="http://127.0.0.1:8002/fhir",
        )
        # The person's browser, a party of its own, signs in and consents.
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as browser:
            page = await browser.get(url)
            signed_in = await login(browser, page, "pat", PATIENT_PASSWORD)
            page = await browser.get(signed_in.headers["location"])
            callback = (await consent(browser, page)).headers["location"]
        token = await oauth.fetch_token(
            f"{ISSUER}/oauth/token", authorization_response=callback, code_verifier=verifier
        )
    assert token["token_type"] == "Bearer"
    assert token["patient"] == "pat-1"
    assert set(token["scope"].split()) == set(APP_SCOPE.split())
    assert state in callback
