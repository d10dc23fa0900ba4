"""``.well-known/smart-configuration`` (SMART App Launch 2.0) of the FHIR base, pointing at the
auth-service: the document auth serves at its own ``/.well-known/smart-configuration``, less the
ID-token algorithm (auth's key ring decides it; read auth's document or its JWKS for it).

phi cannot import auth (each service stands alone), so the lists are written here too;
tests/phi/capability/test_smart_configuration.py checks that both documents say the same.
"""

from __future__ import annotations

from typing import Any

CAPABILITIES = (
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v2",
)
SCOPES = (
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "user/*.cruds",
    "system/*.cruds",
)
#: Client authentication at the token endpoint: public apps (PKCE), a secret, a signed JWT.
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
ASSERTION_ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")


def smart_configuration(issuer: str, jwks_uri: str) -> dict[str, Any]:
    """The SMART configuration document for tokens issued by ``issuer``."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "end_session_endpoint": f"{base}/oauth/logout",
        "registration_endpoint": f"{base}/oauth/register",
        "management_endpoint": f"{base}/oauth/apps",
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": list(SCOPES),
        "capabilities": list(CAPABILITIES),
    }
