"""POST /oauth/register: dynamic client registration (RFC 7591) behind an initial access token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.auth.clients.test_assertions import BackendKey, token_with
from tests.auth.conftest import AuthHarness, basic_header, bearer


async def initial_access_token(auth: AuthHarness) -> dict[str, str]:
    """An admin registers a developer portal's client holding ``auth:register``; its token is
    the initial access token."""
    portal = await auth.create_client(client_id="dev-portal", scope="auth:register")
    response = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_header("dev-portal", portal["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


async def register(auth: AuthHarness, headers: dict[str, str], **metadata: Any) -> httpx.Response:
    return await auth.http.post("/oauth/register", json=metadata, headers=headers)


async def test_a_confidential_backend_registers_and_gets_a_secret(auth: AuthHarness) -> None:
    headers = await initial_access_token(auth)
    response = await register(
        auth,
        headers,
        client_name="lab results feed",
        grant_types=["client_credentials"],
        scope="patient/Observation.rs",
        logo_uri="https://lab.example/logo.png",
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_secret"].startswith("mmcs_")
    assert body["client_secret_expires_at"] == 0
    assert isinstance(body["client_id_issued_at"], int)
    assert body["grant_types"] == ["client_credentials"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["scope"] == "patient/Observation.rs"
    assert "logo_uri" not in body
    token = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_header(body["client_id"], body["client_secret"]),
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "patient/Observation.rs"
    events = await auth.audit_events(action="auth.client_registered")
    assert events[-1]["actor"] == "dev-portal"
    assert events[-1]["resource_id"] == body["client_id"]


async def test_a_backend_service_registers_its_jwks_and_signs_in(auth: AuthHarness) -> None:
    headers = await initial_access_token(auth)
    key = BackendKey.ec()
    response = await register(
        auth,
        headers,
        client_name="payer bulk export",
        grant_types=["client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.public_jwk()]},
        scope="user/Patient.rs",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert "client_secret" not in body
    assert body["jwks"] == {"keys": [key.public_jwk()]}
    token = await token_with(auth, key.assertion(body["client_id"]))
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "user/Patient.rs"


@pytest.mark.parametrize(
    ("metadata", "error", "description"),
    [
        (
            {"grant_types": ["authorization_code"], "redirect_uris": ["http://app.example/cb"]},
            "invalid_redirect_uri",
            "redirect URI 'http://app.example/cb' must use https (http on localhost)",
        ),
        (
            {"grant_types": ["authorization_code"], "redirect_uris": []},
            "invalid_redirect_uri",
            "authorization_code needs at least one redirect URI",
        ),
        (
            {"grant_types": ["password"]},
            "invalid_client_metadata",
            "grant_types may hold authorization_code, refresh_token and client_credentials",
        ),
        (
            {
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "tls_client_auth",
            },
            "invalid_client_metadata",
            "token_endpoint_auth_method 'tls_client_auth' is unknown",
        ),
        (
            {"grant_types": ["client_credentials"], "scope": "system/*.cruds"},
            "invalid_client_metadata",
            "scope 'system/*.cruds' is not allowed for this client",
        ),
        (
            {"grant_types": ["client_credentials"], "scope": "auth:admin"},
            "invalid_client_metadata",
            "scope 'auth:admin' is not allowed for this client",
        ),
        (
            {"grant_types": ["client_credentials"], "client_name": 42},
            "invalid_client_metadata",
            "client_name: Input should be a valid string",
        ),
    ],
)
async def test_invalid_metadata_is_refused_per_rfc_7591(
    auth: AuthHarness, metadata: dict[str, Any], error: str, description: str
) -> None:
    headers = await initial_access_token(auth)
    before = await auth.count("clients")
    response = await register(auth, headers, **metadata)
    assert response.status_code == 400, response.text
    assert response.json() == {"error": error, "error_description": description}
    assert await auth.count("clients") == before


async def test_jwks_and_jwks_uri_are_exclusive(auth: AuthHarness) -> None:
    headers = await initial_access_token(auth)
    key = BackendKey.rsa()
    before = await auth.count("clients")
    both = await register(
        auth,
        headers,
        grant_types=["client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.public_jwk()]},
        jwks_uri="https://backend.example/jwks.json",
    )
    assert both.status_code == 400
    assert both.json()["error"] == "invalid_client_metadata"
    assert "exactly one of jwks and jwks_uri" in both.json()["error_description"]
    neither = await register(
        auth,
        headers,
        grant_types=["client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
    )
    assert neither.status_code == 400
    secret_with_keys = await register(
        auth, headers, grant_types=["client_credentials"], jwks={"keys": [key.public_jwk()]}
    )
    assert secret_with_keys.status_code == 400
    assert "for private_key_jwt clients only" in secret_with_keys.json()["error_description"]
    assert await auth.count("clients") == before


async def test_registration_needs_an_initial_access_token(auth: AuthHarness) -> None:
    before = await auth.count("clients")
    anonymous = await auth.http.post(
        "/oauth/register", json={"grant_types": ["client_credentials"]}
    )
    assert anonymous.status_code == 401
    service_token = await auth.access_token()
    without_scope = await register(auth, bearer(service_token), grant_types=["client_credentials"])
    assert without_scope.status_code == 403
    assert await auth.count("clients") == before


async def test_a_public_smart_app_registers_without_a_secret(auth: AuthHarness) -> None:
    headers = await initial_access_token(auth)
    response = await register(
        auth,
        headers,
        client_name="my health app",
        redirect_uris=["https://app.example/callback", "http://localhost:3000/cb"],
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
        scope="openid fhirUser launch/patient patient/*.rs offline_access",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert "client_secret" not in body
    assert body["token_endpoint_auth_method"] == "none"
    assert body["redirect_uris"] == ["https://app.example/callback", "http://localhost:3000/cb"]
    assert body["response_types"] == ["code"]
    stored = await auth.http.get(
        f"/admin/clients/{body['client_id']}", headers=await auth.admin_headers()
    )
    assert stored.json()["public"] is True
    assert stored.json()["redirect_uris"] == body["redirect_uris"]


async def test_a_confidential_smart_app_gets_a_secret(auth: AuthHarness) -> None:
    headers = await initial_access_token(auth)
    response = await register(
        auth,
        headers,
        redirect_uris=["https://ehr-app.example/cb"],
        token_endpoint_auth_method="client_secret_post",
        scope="openid launch user/*.rs",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["grant_types"] == ["authorization_code"]
    assert body["client_secret"].startswith("mmcs_")
    assert body["token_endpoint_auth_method"] == "client_secret_post"


@pytest.mark.parametrize(
    ("metadata", "error", "description"),
    [
        (
            {"redirect_uris": ["https://app.example/cb#frag"]},
            "invalid_redirect_uri",
            "redirect URI 'https://app.example/cb#frag' is not an absolute https URI",
        ),
        (
            {"redirect_uris": ["com.example.app:/cb"]},
            "invalid_redirect_uri",
            "redirect URI 'com.example.app:/cb' is not an absolute https URI",
        ),
        (
            {
                "redirect_uris": ["https://app.example/cb"],
                "grant_types": ["authorization_code", "client_credentials"],
                "token_endpoint_auth_method": "none",
            },
            "invalid_client_metadata",
            "a public client (none) may use authorization_code only",
        ),
        (
            {"redirect_uris": ["https://app.example/cb"], "response_types": ["token"]},
            "invalid_client_metadata",
            'response_types must be ["code"]',
        ),
    ],
)
async def test_app_metadata_is_refused_per_rfc_7591(
    auth: AuthHarness, metadata: dict[str, Any], error: str, description: str
) -> None:
    headers = await initial_access_token(auth)
    before = await auth.count("clients")
    response = await register(auth, headers, **metadata)
    assert response.status_code == 400, response.text
    assert response.json() == {"error": error, "error_description": description}
    assert await auth.count("clients") == before
