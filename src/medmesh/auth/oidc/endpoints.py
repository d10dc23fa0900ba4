"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and
``/.well-known/smart-configuration`` (SMART App Launch 2.0)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.responses import Response

from medmesh.auth.authorize.pages import render
from medmesh.auth.authorize.sessions import COOKIE, COOKIE_PATH
from medmesh.auth.components import AuthComponents, AuthState, Components
from medmesh.auth.oidc.smart import smart_configuration
from medmesh.platform.db import SessionDep
from medmesh.platform.tokens import jws

router = APIRouter(tags=["sign-in"])
PAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "the signed-out page"},
    303: {"description": "back to the app's registered post_logout_redirect_uri"},
    400: {"description": "a page: the return address is not registered for the app"},
}


def _hinted_client(components: AuthComponents, issuer: str, hint: str) -> str | None:
    """The app an ID token of ours was issued to (it may have expired: OIDC allows that)."""
    try:
        _, claims = jws.verify_compact(hint, components.keys.verification_keys())
    except jws.InvalidJWS:
        return None
    audience = claims.get("aud")
    return audience if claims.get("iss") == issuer and isinstance(audience, str) else None


async def _logout(
    request: Request, params: dict[str, str], session: SessionDep, components: Components
) -> Response:
    state = AuthState.of(request.app)
    target = params.get("post_logout_redirect_uri")
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    if hint and not client_id:
        client_id = _hinted_client(components, state.settings.issuer, hint)
    if target is not None:
        client = await components.clients.find(lambda: session, client_id or "")
        if client is None or target not in client.post_logout_redirect_uris:
            return render(
                "error.html",
                status=400,
                message="The app asked to return to an address it has not registered.",
            )
    browser = await components.browser_sessions.current(session, request.cookies.get(COOKIE))
    if browser is not None:
        await components.browser_sessions.end(session, browser)
    if target is None:
        response: Response = render("signed_out.html")
    else:
        parts = urlsplit(target)
        extra = urlencode({"state": params["state"]}) if "state" in params else ""
        query = "&".join(q for q in (parts.query, extra) if q)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        response = RedirectResponse(location, status_code=303)
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=state.settings.environment != "development",
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/oauth/logout", response_class=HTMLResponse, responses=PAGE, summary="Sign out")
async def logout_get(request: Request, session: SessionDep, components: Components) -> Response:
    """Ends the person's sign-in session. With `post_logout_redirect_uri` (one the app registered,
    matched exactly; the app is `client_id` or the audience of `id_token_hint`) the browser
    returns there with `state`; otherwise it sees a signed-out page."""
    return await _logout(request, dict(request.query_params), session, components)


@router.post("/oauth/logout", response_class=HTMLResponse, responses=PAGE, summary="Sign out")
async def logout_post(request: Request, session: SessionDep, components: Components) -> Response:
    """The same as GET, with the parameters in a form."""
    form = await request.form()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    return await _logout(request, params, session, components)


@router.get("/.well-known/smart-configuration", summary="SMART App Launch configuration")
async def smart_config(request: Request, components: Components) -> JSONResponse:
    """What a SMART app needs to launch against this server: its endpoints and capabilities."""
    settings = AuthState.of(request.app).settings
    return JSONResponse(
        smart_configuration(settings.issuer, components.keys.signing_alg),
        headers={"Cache-Control": "public, max-age=3600"},
    )
