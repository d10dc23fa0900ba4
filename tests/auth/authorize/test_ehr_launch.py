"""SMART EHR launch: the app brings a launch value an EHR minted; its tokens carry the EHR's
patient and encounter. An expired, reused or another app's launch value gets nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from medmesh.platform.db import utcnow
from tests.auth.authorize.flow import (
    PATIENT_PASSWORD,
    REDIRECT_URI,
    App,
    authorize,
    create_patient,
    exchange,
    login,
    query_of,
)
from tests.auth.conftest import ISSUER, AuthHarness, claims_of
from tests.auth.launches.test_endpoints import mint, register_ehr_app

CLINICIAN_PASSWORD = "a clinician's long password"
LAUNCH_SCOPE = "openid fhirUser launch user/Patient.rs"


async def launch_value(auth: AuthHarness, client_id: str, **context: object) -> str:
    response = await mint(auth, {"client_id": client_id, **context})
    assert response.status_code == 201, response.text
    return str(response.json()["launch"])


async def create_clinician(auth: AuthHarness) -> None:
    await auth.create_user(
        "dr.grey", CLINICIAN_PASSWORD, roles=["clinician"], fhir_user="Practitioner/p1"
    )


async def launch_as_clinician(auth: AuthHarness, app: App, launch: str) -> str:
    """The app's EHR launch with ``launch``, dr.grey signing in; returns the code."""
    return await authorize(
        auth.http,
        app,
        username="dr.grey",
        password=CLINICIAN_PASSWORD,
        scope=LAUNCH_SCOPE,
        launch=launch,
    )


def assert_sent_back(response: httpx.Response, app: App, error: str, description: str) -> None:
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    assert query_of(location) == {
        "error": error,
        "error_description": description,
        "state": app.state,
        "iss": ISSUER,
    }


async def test_the_tokens_carry_the_ehr_context(auth: AuthHarness) -> None:
    app = App(await register_ehr_app(auth))
    await create_clinician(auth)
    launch = await launch_value(auth, app.client_id, patient="pat-7", encounter="enc-1")
    code = await launch_as_clinician(auth, app, launch)
    response = await exchange(auth.http, app, code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == LAUNCH_SCOPE
    assert body["patient"] == "pat-7"
    assert body["encounter"] == "enc-1"
    assert body["need_patient_banner"] is False
    assert body["fhirUser"] == "Practitioner/p1"
    assert "refresh_token" not in body
    access = claims_of(body["access_token"])
    assert access["patient"] == "pat-7"
    assert access["scope"] == LAUNCH_SCOPE
    assert claims_of(body["id_token"])["fhirUser"] == "Practitioner/p1"


async def test_the_ehr_may_ask_for_a_patient_banner(auth: AuthHarness) -> None:
    app = App(await register_ehr_app(auth))
    await create_clinician(auth)
    launch = await launch_value(auth, app.client_id, patient="pat-7", need_patient_banner=True)
    code = await launch_as_clinician(auth, app, launch)
    body = (await exchange(auth.http, app, code)).json()
    assert body["need_patient_banner"] is True
    assert "encounter" not in body


async def test_a_launch_value_works_once(auth: AuthHarness) -> None:
    app = App(await register_ehr_app(auth))
    await create_clinician(auth)
    launch = await launch_value(auth, app.client_id, patient="pat-7")
    await launch_as_clinician(auth, app, launch)
    codes = await auth.count("authorization_codes")
    again = await auth.http.get(
        "/oauth/authorize", params=app.params(scope=LAUNCH_SCOPE, launch=launch)
    )
    assert_sent_back(
        again, app, "invalid_request", "launch is unknown, expired, used or for another app"
    )
    assert await auth.count("authorization_codes") == codes


async def test_an_expired_launch_value_is_refused(
    auth: AuthHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(await register_ehr_app(auth))
    launch = await launch_value(auth, app.client_id, patient="pat-7")
    later = utcnow() + timedelta(seconds=301)
    monkeypatch.setattr("medmesh.auth.launches.service.utcnow", lambda: later)
    response = await auth.http.get(
        "/oauth/authorize", params=app.params(scope=LAUNCH_SCOPE, launch=launch)
    )
    assert_sent_back(
        response, app, "invalid_request", "launch is unknown, expired, used or for another app"
    )
    assert await auth.count("authorization_codes") == 0


async def test_another_apps_launch_value_is_refused(auth: AuthHarness) -> None:
    app = App(await register_ehr_app(auth))
    other = await register_ehr_app(auth)
    launch = await launch_value(auth, other, patient="pat-7")
    response = await auth.http.get(
        "/oauth/authorize", params=app.params(scope=LAUNCH_SCOPE, launch=launch)
    )
    assert_sent_back(
        response, app, "invalid_request", "launch is unknown, expired, used or for another app"
    )
    for forged in ("mmla_forged", "some-other-value"):
        response = await auth.http.get(
            "/oauth/authorize", params=app.params(scope=LAUNCH_SCOPE, launch=forged)
        )
        assert_sent_back(
            response, app, "invalid_request", "launch is unknown, expired, used or for another app"
        )


async def test_the_launch_scope_and_parameter_come_together(auth: AuthHarness) -> None:
    app = App(await register_ehr_app(auth))
    launch = await launch_value(auth, app.client_id, patient="pat-7")
    no_value = await auth.http.get("/oauth/authorize", params=app.params(scope=LAUNCH_SCOPE))
    assert_sent_back(
        no_value,
        app,
        "invalid_request",
        "the launch scope needs a launch parameter (EHR launch)",
    )
    no_scope = await auth.http.get(
        "/oauth/authorize", params=app.params(scope="openid user/Patient.rs", launch=launch)
    )
    assert_sent_back(no_scope, app, "invalid_scope", "a launch parameter needs the launch scope")


async def test_a_patient_cannot_take_another_patients_launch(auth: AuthHarness) -> None:
    app = App(await register_ehr_app(auth, scope="openid fhirUser launch patient/*.rs"))
    await create_patient(auth)  # bound to pat-1
    launch = await launch_value(auth, app.client_id, patient="pat-7")
    page = await auth.http.get(
        "/oauth/authorize", params=app.params(scope="openid launch patient/*.rs", launch=launch)
    )
    assert page.status_code == 200
    signed_in = await login(auth.http, page, "pat", PATIENT_PASSWORD)
    assert signed_in.status_code == 303
    response = await auth.http.get(signed_in.headers["location"])
    assert_sent_back(
        response, app, "access_denied", "the launch's patient is not the person signed in"
    )
    assert await auth.count("authorization_codes") == 0


async def test_the_cleanup_job_deletes_expired_launch_values(
    auth: AuthHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(await register_ehr_app(auth))
    await launch_value(auth, app.client_id, patient="pat-7")
    launches = auth.app.state.auth.launches
    assert await launches.forget_expired() == 0
    later = utcnow() + timedelta(seconds=301)
    monkeypatch.setattr("medmesh.auth.launches.service.utcnow", lambda: later)
    assert await launches.forget_expired() == 1
    assert await auth.count("launch_contexts") == 0
