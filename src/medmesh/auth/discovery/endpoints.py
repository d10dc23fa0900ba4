"""Discovery: RFC 8414 authorization-server metadata, OIDC discovery and the JWKS (RFC 7517)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from medmesh.auth.components import AuthState, Components
from medmesh.auth.roles.defaults import BUILTIN_ROLES

router = APIRouter(tags=["discovery"])


def server_metadata(issuer: str, signing_alg: str) -> dict[str, Any]:
    """What this server supports, truthfully: the authorization code flow with PKCE S256 for
    public and confidential apps, client authentication with a secret or a signed JWT (private_key_jwt), dynamic client
    registration, ID tokens signed with the key ring's algorithm."""
    base = issuer.rstrip("/")
    scopes = sorted({s for _, scope in BUILTIN_ROLES.values() for s in scope.split()})
    return {
        "issuer": issuer,
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "end_session_endpoint": f"{base}/oauth/logout",
        "grant_types_supported": [
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token",
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256"],
        "registration_endpoint": f"{base}/oauth/register",
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [signing_alg],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "scope",
            "client_id",
            "roles",
            "patient",
            "fhirUser",
            "preferred_username",
            "azp",
            "nonce",
            "at_hash",
            "auth_time",
        ],
        "service_documentation": f"{base}/docs",
    }


@router.get("/.well-known/oauth-authorization-server", summary="RFC 8414 metadata")
async def oauth_metadata(request: Request, components: Components) -> JSONResponse:
    """OAuth 2.0 Authorization Server Metadata."""
    return JSONResponse(
        server_metadata(AuthState.of(request.app).settings.issuer, components.keys.signing_alg),
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery")
async def openid_configuration(request: Request, components: Components) -> JSONResponse:
    """OpenID Provider Metadata (the same document as RFC 8414's)."""
    return JSONResponse(
        server_metadata(AuthState.of(request.app).settings.issuer, components.keys.signing_alg),
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/.well-known/jwks.json", summary="JSON Web Key Set")
async def jwks(components: Components) -> JSONResponse:
    """The public keys that verify access tokens: the active key and every retired key whose
    tokens may still be alive."""
    return JSONResponse(
        components.keys.state.jwks, headers={"Cache-Control": "public, max-age=300"}
    )
