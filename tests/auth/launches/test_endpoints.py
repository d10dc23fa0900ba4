"""``POST /ehr/launches``: who may mint a launch value, for which app, with what context."""

from __future__ import annotations

from typing import Any

import httpx

from tests.auth.authorize.flow import REDIRECT_URI
from tests.auth.conftest import AuthHarness, bearer

EHR_APP_SCOPE = "openid fhirUser launch online_access offline_access user/Patient.rs"


async def register_ehr_app(auth: AuthHarness, scope: str = EHR_APP_SCOPE) -> str:
    body = await auth.create_client(
        name="Growth chart",
        grant_types=["authorization_code", "refresh_token"],
        scope=scope,
        public=True,
        redirect_uris=[REDIRECT_URI],
    )
    return str(body["client_id"])


async def mint(
    auth: AuthHarness, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await auth.http.post(
        "/ehr/launches", json=body, headers=headers or await auth.admin_headers()
    )


async def test_an_admin_mints_a_launch_for_an_app(auth: AuthHarness) -> None:
    client_id = await register_ehr_app(auth)
    response = await mint(auth, {"client_id": client_id, "patient": "pat-7", "encounter": "enc-1"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["launch"].startswith("mmla_")
    assert {k: v for k, v in body.items() if k != "launch"} == {
        "client_id": client_id,
        "patient": "pat-7",
        "encounter": "enc-1",
        "need_patient_banner": False,
        "expires_in": 300,
    }
    assert await auth.count("launch_contexts") == 1
    minted = await auth.audit_events(action="auth.launch_minted")
    assert [event["resource_id"] for event in minted] == [client_id]


async def test_an_ehr_with_the_launch_scope_mints_one(auth: AuthHarness) -> None:
    client_id = await register_ehr_app(auth)
    await auth.create_client(
        client_id="ehr", grant_types=["client_credentials"], scope="auth:launch"
    )
    token = await auth.access_token("ehr", scope="auth:launch", audience="medmesh-auth")
    response = await mint(auth, {"client_id": client_id, "patient": "pat-7"}, bearer(token))
    assert response.status_code == 201, response.text
    assert response.json()["encounter"] is None


async def test_a_caller_without_the_scope_is_refused(auth: AuthHarness) -> None:
    client_id = await register_ehr_app(auth)
    anonymous = await auth.http.post("/ehr/launches", json={"client_id": client_id})
    assert anonymous.status_code == 401
    service = await auth.access_token(audience="medmesh-auth")
    response = await mint(auth, {"client_id": client_id, "patient": "pat-7"}, bearer(service))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert await auth.count("launch_contexts") == 0


async def test_an_unknown_client_or_one_without_launch_is_refused(auth: AuthHarness) -> None:
    unknown = await mint(auth, {"client_id": "no-such-app", "patient": "pat-7"})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "client_not_found"
    standalone = await register_ehr_app(auth, scope="openid launch/patient patient/*.rs")
    refused = await mint(auth, {"client_id": standalone, "patient": "pat-7"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "launch_not_allowed"
    assert refused.json()["detail"] == "this client may not ask for the launch scope"
    service = await mint(auth, {"client_id": "demo-service", "patient": "pat-7"})
    assert service.status_code == 422
    assert service.json()["code"] == "not_an_app"
    assert await auth.count("launch_contexts") == 0


async def test_a_malformed_context_is_refused(auth: AuthHarness) -> None:
    client_id = await register_ehr_app(auth)
    for body in (
        {"client_id": client_id, "patient": "Patient/pat-7"},
        {"client_id": client_id, "encounter": "a b"},
        {"client_id": client_id, "location": "ward-3"},
    ):
        response = await mint(auth, body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "invalid_request"
    assert await auth.count("launch_contexts") == 0
