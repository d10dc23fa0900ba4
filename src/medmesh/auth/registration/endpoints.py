"""``POST /oauth/register``: dynamic client registration (RFC 7591)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from medmesh.auth.components import Components, Context, audit_admin_change
from medmesh.auth.registration.schemas import RegistrationRequest, RegistrationResponse
from medmesh.auth.registration.service import REGISTRATION_SCOPE
from medmesh.platform.db import SessionDep
from medmesh.platform.tokens import Principal, RequireScopes

router = APIRouter(prefix="/oauth", tags=["oauth"])
Registrar = Annotated[Principal, Depends(RequireScopes(REGISTRATION_SCOPE))]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/register",
    response_model=RegistrationResponse,
    response_model_exclude_none=True,
    status_code=201,
    responses={
        400: {"description": "RFC 7591 §3.2.2: invalid_client_metadata, invalid_redirect_uri"},
        401: {"description": "no valid initial access token"},
        403: {"description": f"the initial access token lacks the {REGISTRATION_SCOPE} scope"},
    },
    summary="Register a client (RFC 7591)",
)
async def register_client(
    registrar: Registrar,
    session: SessionDep,
    components: Components,
    ctx: Context,
    metadata: Annotated[
        dict[str, Any], Body(description=RegistrationRequest.__doc__ or "client metadata")
    ],
) -> JSONResponse:
    """Registers an app without an admin: the initial access token is a bearer token with the
    `auth:register` scope. Redirect URIs must be https (http only on localhost);
    `private_key_jwt` clients name exactly one of `jwks` and `jwks_uri`; the scope must lie
    within the server's registration scopes. The answer carries the `client_id` and, for a
    client that authenticates with a secret, the `client_secret` (shown once)."""
    client, secret, request = await components.registration.register(session, metadata)
    await audit_admin_change(
        components,
        ctx,
        registrar,
        "auth.client_registered",
        "Client",
        client.client_id,
        grant_types=client.grant_types,
        token_endpoint_auth_method=request.token_endpoint_auth_method,
    )
    body = RegistrationResponse(
        client_id=client.client_id,
        client_id_issued_at=int(client.created_at.timestamp()),
        client_secret=secret,
        client_secret_expires_at=0 if secret is not None else None,
        client_name=client.name,
        redirect_uris=list(client.redirect_uris),
        grant_types=list(client.grant_types),
        response_types=["code"] if "authorization_code" in client.grant_types else [],
        token_endpoint_auth_method=request.token_endpoint_auth_method,
        scope=client.scopes,
        jwks=client.jwks,
        jwks_uri=client.jwks_uri,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=201, headers=NO_STORE)
