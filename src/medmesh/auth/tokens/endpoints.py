"""OAuth 2.0 endpoints: token (RFC 6749), introspection (RFC 7662), revocation (RFC 7009), userinfo."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from medmesh.auth.clients.assertions import assertion_parameters
from medmesh.auth.components import Components, Context, components_of, context_of
from medmesh.auth.oauth import InvalidRequest, SlowDown, UnsupportedGrantType, UnsupportedTokenType
from medmesh.auth.tokens.forms import client_credentials, read_form
from medmesh.auth.tokens.revocation_list import revocation_page
from medmesh.auth.tokens.schemas import (
    INTROSPECT_FORM,
    REVOKE_FORM,
    TOKEN_FORM,
    IntrospectionResponse,
    RevocationList,
    TokenResponse,
    UserInfo,
)
from medmesh.auth.users.service import UserService
from medmesh.platform.db import SessionDep, session_source
from medmesh.platform.errors import Forbidden, NotFound
from medmesh.platform.tokens import CurrentPrincipal
from medmesh.platform.web import direct

# The token and introspection endpoints are the hottest paths of the platform: they take only the
# Request, reach the services directly and are served as direct routes (platform.web.direct_routing),
# because FastAPI's routing and dependency solving cost more than their bodies
# (see docs/decisions/0005-direct-routes.md).
router = APIRouter(prefix="/oauth", tags=["oauth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
GRANTS = ("client_credentials", "password", "refresh_token", "authorization_code")
#: Grants a public client (no secret, PKCE) may use, naming itself by ``client_id`` alone.
PUBLIC_GRANTS = ("authorization_code", "refresh_token")


class OAuthJSONResponse(JSONResponse):
    """JSON rendered by orjson (the stdlib encoder is a visible share of a token request)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _oauth_error_responses() -> dict[int | str, dict[str, Any]]:
    return {
        400: {
            "description": "RFC 6749 §5.2 error (invalid_request, invalid_grant, invalid_scope, ...)"
        },
        401: {"description": "invalid_client, with a WWW-Authenticate challenge"},
        429: {
            "description": "too many token requests from this source (Retry-After, RateLimit headers)"
        },
    }


@router.post(
    "/token",
    response_model=TokenResponse,
    openapi_extra=TOKEN_FORM,
    responses=_oauth_error_responses(),
    summary="Issue tokens (client_credentials, password, refresh_token)",
)
@direct
async def token(request: Request) -> JSONResponse:
    """Issues an access token (a signed JWT) for the `client_credentials`, `password` or `refresh_token`
    grant. Clients authenticate with HTTP Basic or `client_id`/`client_secret` in the form body,
    or (`private_key_jwt` clients, SMART Backend Services) with `client_assertion_type` and a
    signed `client_assertion` (RFC 7523)."""
    components, ctx, session = components_of(request), context_of(request), session_source(request)
    decision = await components.token_limiter.hit(ctx.ip)
    if not decision.allowed:
        raise SlowDown("too many token requests; slow down", headers=decision.headers(60))
    form = await read_form(request)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    if grant_type not in GRANTS:
        raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
    assertion = assertion_parameters(request.headers.get("authorization"), form)
    if assertion is not None:
        client = await components.assertions.authenticate(
            session, ctx, *assertion, client_id=form.get("client_id")
        )
    elif _names_public_client(request, form, grant_type):
        client = await components.clients.identify_public(session, form["client_id"])
    else:
        creds = client_credentials(request, form)
        client = await components.clients.authenticate(
            session, creds.client_id, creds.client_secret
        )
    tokens = components.tokens
    if grant_type == "client_credentials":
        issued = await tokens.client_credentials(
            ctx, client, form.get("scope"), form.get("audience")
        )
    elif grant_type == "password":
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise InvalidRequest("username and password are required")
        issued = await tokens.password(
            session(), ctx, client, username, password, form.get("scope"), form.get("audience")
        )
    elif grant_type == "authorization_code":
        issued = await components.codes.exchange(
            session(),
            ctx,
            client,
            form.get("code"),
            form.get("redirect_uri"),
            form.get("code_verifier"),
        )
    else:
        refresh = form.get("refresh_token")
        if not refresh:
            raise InvalidRequest("refresh_token is required")
        issued = await tokens.refresh(session(), ctx, client, refresh, form.get("scope"))
    headers = {**NO_STORE, **decision.headers(60)}
    return OAuthJSONResponse(issued.as_response(), headers=headers)


def _names_public_client(request: Request, form: dict[str, str], grant_type: str) -> bool:
    """A request that only names its client: a public client's (RFC 6749 §2.3, OAuth 2.1)."""
    return (
        grant_type in PUBLIC_GRANTS
        and "authorization" not in request.headers
        and "client_secret" not in form
        and bool(form.get("client_id"))
    )


@router.post(
    "/introspect",
    response_model=IntrospectionResponse,
    response_model_exclude_none=True,
    openapi_extra=INTROSPECT_FORM,
    responses=_oauth_error_responses(),
    summary="Token introspection (RFC 7662)",
)
@direct
async def introspect(request: Request) -> JSONResponse:
    """Tells an authenticated client whether a token is active, and its claims. Expired, revoked,
    forged or unknown tokens are all just `{"active": false}`."""
    components, session = components_of(request), session_source(request)
    form = await read_form(request)
    creds = client_credentials(request, form)
    caller = await components.clients.authenticate(session, creds.client_id, creds.client_secret)
    token_value = form.get("token")
    if not token_value:
        raise InvalidRequest("token is required")
    return OAuthJSONResponse(
        await components.tokens.revoker.introspect(session, caller, token_value), headers=NO_STORE
    )


@router.post(
    "/revoke",
    openapi_extra=REVOKE_FORM,
    responses={
        200: {"description": "revoked, or the token was not valid (RFC 7009 §2.2)"},
        **_oauth_error_responses(),
    },
    summary="Token revocation (RFC 7009)",
)
async def revoke(
    request: Request, session: SessionDep, components: Components, ctx: Context
) -> JSONResponse:
    """Revokes a refresh token (and its whole family) or an access token (by `jti`, until it expires).
    Answers 200 for unknown or invalid tokens too, as RFC 7009 requires."""
    form = await read_form(request)
    creds = client_credentials(request, form)
    caller = await components.clients.authenticate(
        lambda: session, creds.client_id, creds.client_secret
    )
    token_value = form.get("token")
    if not token_value:
        raise InvalidRequest("token is required")
    hint = form.get("token_type_hint")
    if hint is not None and hint not in ("access_token", "refresh_token"):
        raise UnsupportedTokenType("token_type_hint must be access_token or refresh_token")
    await components.tokens.revoker.revoke(session, ctx, caller, token_value)
    return JSONResponse({}, headers=NO_STORE)


@router.get(
    "/revocations",
    response_model=RevocationList,
    responses={400: {"description": "invalid_request: `after` is not a cursor of this server"}},
    summary="Revoked tokens, sessions, users and clients (for resource servers)",
)
async def revocations(
    session: SessionDep,
    after: str | None = Query(default=None, max_length=40, description="a cursor from a page"),
) -> JSONResponse:
    """What every resource server must refuse besides expired tokens, published like the JWKS:
    tokens (`jti`), sessions (`sid`, a refresh family), users (`sub`) and clients revoked, each
    keyed by a SHA-256 so that the list names nobody. Pull it from the start, then every second
    with `after` set to the last page's cursor; entries may come again and are merged."""
    return OAuthJSONResponse(await revocation_page(session, after), headers=NO_STORE)


async def _userinfo(
    principal: CurrentPrincipal, session: SessionDep, components: Components
) -> UserInfo:
    if not principal.has_scope("openid"):
        raise Forbidden("the access token lacks the openid scope", code="insufficient_scope")
    if principal.is_service:
        raise NotFound("service tokens have no user", code="no_user")
    user = await UserService.get_or_none(session, principal.sub)
    if user is None or user.disabled:
        raise NotFound("the user no longer exists", code="no_user")
    return UserInfo(
        sub=user.id,
        preferred_username=user.username,
        roles=user.roles,
        patient=user.patient_id,
        fhirUser=user.fhir_user,
    )


@router.get(
    "/userinfo", response_model=UserInfo, response_model_exclude_none=True, summary="OIDC UserInfo"
)
async def userinfo_get(
    principal: CurrentPrincipal, session: SessionDep, components: Components
) -> UserInfo:
    """The signed-in user's claims, for an access token with the `openid` scope."""
    return await _userinfo(principal, session, components)


@router.post(
    "/userinfo", response_model=UserInfo, response_model_exclude_none=True, summary="OIDC UserInfo"
)
async def userinfo_post(
    principal: CurrentPrincipal, session: SessionDep, components: Components
) -> UserInfo:
    """The same as GET (OpenID Connect Core §5.3.1 allows both)."""
    return await _userinfo(principal, session, components)
