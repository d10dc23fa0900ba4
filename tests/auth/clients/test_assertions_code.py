"""A confidential-asymmetric SMART app: it exchanges its authorization code with a signed
client assertion instead of a secret."""

from __future__ import annotations

from tests.auth.authorize.flow import App, authorize, create_patient, exchange, register_app
from tests.auth.clients.test_assertions import JWT_BEARER, BackendKey, assert_refused
from tests.auth.conftest import AuthHarness, claims_of


async def test_an_app_exchanges_its_code_with_a_signed_assertion(auth: AuthHarness) -> None:
    key = BackendKey.ec()
    registered = await register_app(
        auth,
        public=False,
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.public_jwk()]},
    )
    assert registered.secret is None
    await create_patient(auth)
    app = App(registered.client_id)
    code = await authorize(auth.http, app)
    assertion = key.assertion(app.client_id)
    response = await exchange(
        auth.http, app, code, client_assertion_type=JWT_BEARER, client_assertion=assertion
    )
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["client_id"] == app.client_id
    assert response.json()["patient"] == "pat-1"


async def test_a_replayed_assertion_cannot_exchange_a_second_code(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    registered = await register_app(
        auth,
        public=False,
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.public_jwk()]},
    )
    await create_patient(auth)
    app = App(registered.client_id)
    assertion = key.assertion(app.client_id)
    first = await exchange(
        auth.http,
        app,
        await authorize(auth.http, app),
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion,
    )
    assert first.status_code == 200, first.text
    second_app = App(registered.client_id)
    auth.http.cookies.clear()  # a new browser session: sign in again
    replay = await exchange(
        auth.http,
        second_app,
        await authorize(auth.http, second_app),
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion,
    )
    await assert_refused(auth, replay, "client_assertion was already used (jti)", "replayed")
