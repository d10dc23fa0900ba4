"""The authorization code flow with PKCE, as a public and as a confidential app."""

from __future__ import annotations

from tests.auth.authorize.flow import (
    REDIRECT_URI,
    authorize,
    create_patient,
    exchange,
    register_app,
)
from tests.auth.conftest import AuthHarness, claims_of


async def test_a_public_app_gets_tokens_with_the_patient_in_context(auth: AuthHarness) -> None:
    app = await register_app(auth)
    patient = await create_patient(auth)
    code = await authorize(auth.http, app)
    response = await exchange(auth.http, app, code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient"] == "pat-1"
    assert body["need_patient_banner"] is True
    assert body["fhirUser"] == "Patient/pat-1"
    assert body["scope"].split() == [
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
        "patient/Patient.rs",
        "patient/Observation.rs",
    ]
    assert body["refresh_token"].startswith("mmrt_")
    access = claims_of(body["access_token"])
    assert access["sub"] == patient["id"]
    assert access["aud"] == ["medmesh-phi", "medmesh-auth"]
    assert access["patient"] == "pat-1"
    id_token = claims_of(body["id_token"])
    assert id_token["aud"] == app.client_id
    assert id_token["azp"] == app.client_id
    assert id_token["nonce"] == "n-0S6_WzA2Mj"
    assert id_token["fhirUser"] == "Patient/pat-1"


async def test_an_unticked_scope_is_not_granted(auth: AuthHarness) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    code = await authorize(auth.http, app, untick=("patient/Observation.rs", "offline_access"))
    body = (await exchange(auth.http, app, code)).json()
    assert "patient/Observation.rs" not in body["scope"].split()
    assert "refresh_token" not in body
    assert claims_of(body["access_token"])["scope"] == body["scope"]


async def test_consent_is_remembered_for_the_same_scopes(auth: AuthHarness) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    await authorize(auth.http, app)
    again = await auth.http.get("/oauth/authorize", params=app.params())
    assert again.status_code == 303
    assert again.headers["location"].startswith(REDIRECT_URI + "?code=")


async def test_a_confidential_app_authenticates_with_its_secret(auth: AuthHarness) -> None:
    app = await register_app(auth, public=False)
    await create_patient(auth)
    code = await authorize(auth.http, app)
    without = await exchange(auth.http, app.__class__(app.client_id), code)
    assert without.status_code == 401
    assert without.json()["error"] == "invalid_client"
    response = await exchange(auth.http, app, code)
    assert response.status_code == 200, response.text


async def test_the_refresh_token_of_a_public_app_rotates(auth: AuthHarness) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    body = (await exchange(auth.http, app, await authorize(auth.http, app))).json()
    refreshed = await auth.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": app.client_id,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != body["refresh_token"]
    assert refreshed.json()["scope"] == body["scope"]
    assert claims_of(refreshed.json()["access_token"])["patient"] == "pat-1"


async def test_prompt_login_asks_a_signed_in_person_once_more(auth: AuthHarness) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    await authorize(auth.http, app)
    code = await authorize(auth.http, app, prompt="login")
    assert (await exchange(auth.http, app, code)).status_code == 200


async def test_prompt_none_without_a_session_returns_login_required(auth: AuthHarness) -> None:
    app = await register_app(auth)
    response = await auth.http.get("/oauth/authorize", params=app.params(prompt="none"))
    assert response.status_code == 303
    assert "error=login_required" in response.headers["location"]
