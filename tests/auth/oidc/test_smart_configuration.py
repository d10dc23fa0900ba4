"""``/.well-known/smart-configuration`` lists what the server does, and each capability it
lists is done here: an EHR launch posted to the authorization endpoint by a public app, and a
standalone launch by a confidential app. ``client-confidential-asymmetric`` (an app exchanging
its code with a signed assertion) is shown by tests/auth/clients/test_assertions_code.py."""

from __future__ import annotations

from medmesh.auth.oidc.smart import CAPABILITIES
from tests.auth.authorize.flow import (
    REDIRECT_URI,
    App,
    authorize,
    consent,
    create_patient,
    exchange,
    login,
    query_of,
    register_app,
)
from tests.auth.authorize.test_ehr_launch import CLINICIAN_PASSWORD, create_clinician, launch_value
from tests.auth.conftest import ISSUER, AuthHarness, claims_of
from tests.auth.launches.test_endpoints import register_ehr_app

EHR_PROBE = {
    "launch-ehr",
    "authorize-post",
    "client-public",
    "sso-openid-connect",
    "context-banner",
    "context-ehr-patient",
    "context-ehr-encounter",
    "permission-online",
    "permission-user",
}
STANDALONE_PROBE = {
    "launch-standalone",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-offline",
    "permission-patient",
    "permission-v2",
}


async def test_the_document_lists_exactly_the_capabilities(auth: AuthHarness) -> None:
    response = await auth.http.get("/.well-known/smart-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["capabilities"] == CAPABILITIES
    assert set(CAPABILITIES) == EHR_PROBE | STANDALONE_PROBE | {"client-confidential-asymmetric"}
    assert config["management_endpoint"] == f"{ISSUER}/oauth/apps"
    assert config["registration_endpoint"] == f"{ISSUER}/oauth/register"
    assert {"launch", "launch/patient", "online_access", "offline_access"} <= set(
        config["scopes_supported"]
    )


async def test_an_ehr_launch_posted_by_a_public_app(auth: AuthHarness) -> None:
    app = App(await register_ehr_app(auth))
    assert app.secret is None  # client-public
    await create_clinician(auth)
    launch = await launch_value(auth, app.client_id, patient="pat-7", encounter="enc-1")
    scope = "openid fhirUser launch online_access user/Patient.rs"
    # authorize-post: the request's parameters come as a form
    page = await auth.http.post("/oauth/authorize", data=app.params(scope=scope, launch=launch))
    assert page.status_code == 200
    signed_in = await login(auth.http, page, "dr.grey", CLINICIAN_PASSWORD)
    assert signed_in.status_code == 303
    granted = await consent(auth.http, await auth.http.get(signed_in.headers["location"]))
    assert granted.status_code == 303
    assert granted.headers["location"].startswith(REDIRECT_URI + "?code=")
    response = await exchange(auth.http, app, query_of(granted.headers["location"])["code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == scope  # permission-user
    assert (body["patient"], body["encounter"]) == ("pat-7", "enc-1")  # context-ehr-*
    assert body["need_patient_banner"] is False  # context-banner
    assert claims_of(body["id_token"])["aud"] == app.client_id  # sso-openid-connect
    assert body["refresh_token"].startswith("mmrt_")  # permission-online


async def test_a_standalone_launch_by_a_confidential_app(auth: AuthHarness) -> None:
    app = await register_app(auth, public=False)
    assert app.secret is not None  # client-confidential-symmetric
    await create_patient(auth)
    code = await authorize(auth.http, app)  # launch-standalone
    response = await exchange(auth.http, app, code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient"] == "pat-1"  # context-standalone-patient
    assert body["need_patient_banner"] is True
    assert "patient/Observation.rs" in body["scope"].split()  # permission-patient, -v2
    assert body["refresh_token"].startswith("mmrt_")  # permission-offline
