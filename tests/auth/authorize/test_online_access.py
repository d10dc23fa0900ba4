"""``online_access`` refresh tokens live as long as the person's sign-in; ``offline_access``
ones outlive it (SMART App Launch 2.0)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from medmesh.platform.db import utcnow
from tests.auth.authorize.flow import REDIRECT_URI, App, authorize, create_patient, exchange
from tests.auth.conftest import AuthHarness

ONLINE = "openid fhirUser launch/patient online_access patient/Patient.rs"
OFFLINE = "openid fhirUser launch/patient offline_access patient/Patient.rs"


async def register(auth: AuthHarness) -> App:
    body = await auth.create_client(
        name="Growth chart",
        grant_types=["authorization_code", "refresh_token"],
        scope="openid fhirUser launch/patient online_access offline_access patient/Patient.rs",
        public=True,
        redirect_uris=[REDIRECT_URI],
    )
    return App(body["client_id"])


async def refresh(auth: AuthHarness, app: App, token: str) -> httpx.Response:
    return await auth.http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": app.client_id},
    )


async def tokens_for(auth: AuthHarness, app: App, scope: str) -> dict[str, str]:
    code = await authorize(auth.http, app, scope=scope)
    response = await exchange(auth.http, app, code)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def test_online_access_refreshes_while_signed_in_and_dies_at_logout(
    auth: AuthHarness,
) -> None:
    app = await register(auth)
    await create_patient(auth)
    body = await tokens_for(auth, app, ONLINE)
    assert body["scope"] == ONLINE
    refreshed = await refresh(auth, app, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    latest = refreshed.json()["refresh_token"]
    signed_out = await auth.http.get("/oauth/logout")
    assert signed_out.status_code == 200
    after = await refresh(auth, app, latest)
    assert after.status_code == 400
    assert after.json() == {
        "error": "invalid_grant",
        "error_description": "refresh token is expired or revoked",
    }
    assert (await auth.introspect(latest))["active"] is False


async def test_offline_access_survives_the_logout(auth: AuthHarness) -> None:
    app = await register(auth)
    await create_patient(auth)
    body = await tokens_for(auth, app, OFFLINE)
    assert (await auth.http.get("/oauth/logout")).status_code == 200
    after = await refresh(auth, app, body["refresh_token"])
    assert after.status_code == 200, after.text
    assert after.json()["scope"] == OFFLINE


async def test_offline_access_wins_when_both_are_granted(auth: AuthHarness) -> None:
    app = await register(auth)
    await create_patient(auth)
    both = "openid launch/patient online_access offline_access patient/Patient.rs"
    body = await tokens_for(auth, app, both)
    assert (await auth.http.get("/oauth/logout")).status_code == 200
    assert (await refresh(auth, app, body["refresh_token"])).status_code == 200


async def test_online_access_ends_when_the_sign_in_expires(
    auth: AuthHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await register(auth)
    await create_patient(auth)
    body = await tokens_for(auth, app, ONLINE)
    later = utcnow() + timedelta(seconds=auth.settings.browser_session_ttl_seconds + 1)
    monkeypatch.setattr("medmesh.auth.tokens.service.utcnow", lambda: later)
    after = await refresh(auth, app, body["refresh_token"])
    assert after.status_code == 400
    assert after.json() == {
        "error": "invalid_grant",
        "error_description": "the sign-in session of this online_access token has ended",
    }


async def test_online_access_ends_when_the_person_signs_in_anew(auth: AuthHarness) -> None:
    app = await register(auth)
    await create_patient(auth)
    body = await tokens_for(auth, app, ONLINE)
    # prompt=login replaces the sign-in session: the old one, and its online tokens, end.
    await authorize(auth.http, app, scope=ONLINE, prompt="login")
    after = await refresh(auth, app, body["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error_description"] == (
        "the sign-in session of this online_access token has ended"
    )
