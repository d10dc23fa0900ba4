"""``.well-known/smart-configuration`` (SMART App Launch 2.0), pointing at the auth-service.

It claims only what the auth-service and this server really do: confidential clients
with a shared secret (``client_secret_basic``/``client_secret_post``), the
client-credentials, password and refresh-token grants, SMART v2 and v1 scope syntax,
patient and user permissions, and the patient context conveyed in the token response
(``patient``) for patient users. There is no authorization endpoint (no browser
launch), so no ``launch-*``, ``client-public`` or PKCE capability is listed.
"""

from __future__ import annotations

from typing import Any

CAPABILITIES = (
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
)
SCOPES = (
    "openid",
    "fhirUser",
    "launch/patient",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
    "audit:read",
)


def smart_configuration(issuer: str, jwks_uri: str) -> dict[str, Any]:
    """The SMART configuration document for tokens issued by ``issuer``."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "token_endpoint": f"{base}/oauth/token",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": [],
        "code_challenge_methods_supported": [],
        "scopes_supported": list(SCOPES),
        "capabilities": list(CAPABILITIES),
    }
