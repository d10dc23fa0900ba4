"""POST /oauth/token: grants, client authentication and RFC 6749 §5.2 errors."""

from __future__ import annotations

import time

import pytest

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID
from tests.auth.conftest import ISSUER, AuthHarness, basic_header, claims_of, header_of


def assert_oauth_error(response: object, status: int, error: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert response.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]


async def test_client_credentials_with_basic_auth(auth: AuthHarness) -> None:
    response = await auth.token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert "refresh_token" not in body
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert "system/*.cruds" in body["scope"].split()
    assert header_of(body["access_token"])["alg"] == "RS256"


async def test_client_credentials_with_secret_in_body(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_SERVICE_CLIENT_ID,
            "client_secret": auth.boot.clients[DEMO_SERVICE_CLIENT_ID],
        },
    )
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["client_id"] == DEMO_SERVICE_CLIENT_ID


async def test_service_token_claims(auth: AuthHarness) -> None:
    before = int(time.time())
    body = (await auth.token(scope="system/Patient.rs")).json()
    claims = claims_of(body["access_token"])
    assert claims["iss"] == ISSUER
    assert claims["sub"] == DEMO_SERVICE_CLIENT_ID
    assert claims["client_id"] == DEMO_SERVICE_CLIENT_ID
    assert isinstance(claims["aud"], list)
    assert {"medmesh-auth", "medmesh-phi", "medmesh-payments"} <= set(claims["aud"])
    assert claims["exp"] - claims["iat"] == 900
    assert claims["nbf"] == claims["iat"]
    assert before <= claims["iat"] <= int(time.time())
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert claims["scope"] == "system/Patient.rs" == body["scope"]
    assert claims["roles"] == ["service"]
    assert "patient" not in claims
    assert "fhirUser" not in claims


async def test_jti_is_unique_per_token(auth: AuthHarness) -> None:
    jtis = {claims_of(await auth.access_token())["jti"] for _ in range(5)}
    assert len(jtis) == 5


async def test_audience_can_be_narrowed(auth: AuthHarness) -> None:
    token = await auth.access_token(audience="medmesh-phi")
    assert claims_of(token)["aud"] == ["medmesh-phi"]
    response = await auth.token(audience="medmesh-elsewhere")
    assert_oauth_error(response, 400, "invalid_target")


async def test_patient_user_token_carries_patient_and_fhir_user(auth: AuthHarness) -> None:
    await auth.create_user("pat.smith", roles=["patient"], patient_id="p-123")
    response = await auth.login("pat.smith", "a long enough password")
    assert response.status_code == 200, response.text
    body = response.json()
    claims = claims_of(body["access_token"])
    assert claims["patient"] == "p-123"
    assert claims["fhirUser"] == "Patient/p-123"
    assert claims["roles"] == ["patient"]
    assert "patient/*.rs" in claims["scope"].split()
    assert claims["client_id"] == CLI_CLIENT_ID
    assert claims["sub"] != CLI_CLIENT_ID
    assert body["refresh_token"].startswith("mmrt_")
    id_token = claims_of(body["id_token"])
    assert id_token["aud"] == CLI_CLIENT_ID
    assert id_token["sub"] == claims["sub"]
    assert id_token["preferred_username"] == "pat.smith"


async def test_both_client_auth_methods_at_once_is_refused(auth: AuthHarness) -> None:
    before = await auth.counts()
    response = await auth.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_SERVICE_CLIENT_ID,
            "client_secret": auth.boot.clients[DEMO_SERVICE_CLIENT_ID],
        },
        headers=auth.basic(DEMO_SERVICE_CLIENT_ID),
    )
    # RFC 6749 §2.3 and §5.2: more than one mechanism is a malformed request.
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "use exactly one client authentication method",
    }
    assert "www-authenticate" not in response.headers
    assert await auth.counts() == before


async def test_a_header_other_than_basic_is_invalid_client(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Bearer something"},
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "use HTTP Basic or the form body to authenticate the client",
    }


async def test_wrong_secret_is_invalid_client_with_challenge(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_header(DEMO_SERVICE_CLIENT_ID, "mmcs_wrong"),
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic bm9jb2xvbg=="},  # "nocolon"
        {"Authorization": "Bearer abc"},
    ],
    ids=["none", "bad-base64", "no-colon", "wrong-scheme"],
)
async def test_missing_or_malformed_client_auth(auth: AuthHarness, headers: dict[str, str]) -> None:
    response = await auth.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=headers
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert "www-authenticate" in response.headers


async def test_unknown_client_is_invalid_client(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_header("nobody", "mmcs_x"),
    )
    assert_oauth_error(response, 401, "invalid_client")


async def test_unknown_grant_type(auth: AuthHarness) -> None:
    response = await auth.token(grant_type="urn:ietf:params:oauth:grant-type:device_code")
    assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_a_grant_the_client_lacks(auth: AuthHarness) -> None:
    response = await auth.token(grant_type="authorization_code", code="x")
    assert_oauth_error(response, 400, "unauthorized_client")


async def test_missing_grant_type(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token", data={"scope": "x"}, headers=auth.basic(DEMO_SERVICE_CLIENT_ID)
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_scope_not_allowed(auth: AuthHarness) -> None:
    response = await auth.token(scope="auth:admin")
    assert_oauth_error(response, 400, "invalid_scope")


async def test_malformed_scope(auth: AuthHarness) -> None:
    response = await auth.token(scope="user/Patient.xyz")
    assert_oauth_error(response, 400, "invalid_scope")


async def test_password_grant_disabled_for_client(auth: AuthHarness) -> None:
    response = await auth.login(client_id=DEMO_SERVICE_CLIENT_ID)
    assert_oauth_error(response, 400, "unauthorized_client")


async def test_client_credentials_disabled_for_client(auth: AuthHarness) -> None:
    client = await auth.create_client(grant_types=["password"], scope="openid")
    response = await auth.token(client["client_id"])
    assert_oauth_error(response, 400, "unauthorized_client")


async def test_password_grant_wrong_password(auth: AuthHarness) -> None:
    response = await auth.login(password="not the password")
    assert_oauth_error(response, 400, "invalid_grant")


async def test_password_grant_requires_username_and_password(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "admin"},
        headers=auth.basic(CLI_CLIENT_ID),
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_refresh_grant_requires_refresh_token(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/token", data={"grant_type": "refresh_token"}, headers=auth.basic(CLI_CLIENT_ID)
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_disabled_client_cannot_authenticate(auth: AuthHarness) -> None:
    client = await auth.create_client(scope="system/*.rs")
    assert (await auth.token(client["client_id"])).status_code == 200
    response = await auth.http.patch(
        f"/admin/clients/{client['client_id']}",
        json={"disabled": True},
        headers=await auth.admin_headers(),
    )
    assert response.status_code == 200
    assert_oauth_error(await auth.token(client["client_id"]), 401, "invalid_client")


async def test_client_token_lifetime_follows_client_setting(auth: AuthHarness) -> None:
    client = await auth.create_client(scope="system/*.rs", access_token_ttl_seconds=120)
    body = (await auth.token(client["client_id"])).json()
    claims = claims_of(body["access_token"])
    assert body["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120


async def test_token_issue_is_audited(auth: AuthHarness) -> None:
    await auth.token(scope="system/Patient.rs")
    events = await auth.audit_events(action="auth.token_issued")
    assert events[-1]["actor"] == DEMO_SERVICE_CLIENT_ID
    assert events[-1]["client_id"] == DEMO_SERVICE_CLIENT_ID
    assert events[-1]["details"] == {
        "grant_type": "client_credentials",
        "scope": "system/Patient.rs",
    }
    assert events[-1]["source_ip"] == "203.0.113.7"


async def test_security_headers_on_token_response(auth: AuthHarness) -> None:
    response = await auth.token()
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in response.headers["strict-transport-security"]
    assert response.headers["x-request-id"]
