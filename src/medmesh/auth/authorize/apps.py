"""The connected-apps page: which apps hold access to the person's account, and a button that
takes it back (the app's refresh tokens die at once, its access tokens are refused wherever
revocations are synced)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from medmesh.auth.authorize.pages import form_text, render
from medmesh.auth.authorize.service import SignInFailed
from medmesh.auth.authorize.sessions import COOKIE, FormRefused, set_session_cookie
from medmesh.auth.authorize.wording import describe
from medmesh.auth.components import AuthState, Components
from medmesh.auth.logins.service import LoginThrottled
from medmesh.auth.models import BrowserSession
from medmesh.platform.db import SessionDep
from medmesh.platform.origin import RequestOrigin

router = APIRouter(prefix="/oauth/apps", tags=["sign-in"])
PAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "a page for the person"}
}
FORM_EXPIRED = "This form was not sent by a page of this service, or it has expired."


def _with_cookie(request: Request, response: Response, cookie: str | None) -> Response:
    if cookie is None:
        return response
    return set_session_cookie(response, cookie, AuthState.of(request.app).settings)


def _login(csrf_token: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("username", "")
    return render(
        "login.html",
        status=status,
        action="/oauth/apps/login",
        app_name=None,
        params={},
        csrf_token=csrf_token,
        **context,
    )


@router.get("", response_class=HTMLResponse, responses=PAGE, summary="Connected apps")
async def connected_apps(request: Request, session: SessionDep, components: Components) -> Response:
    """The apps the signed-in person granted access, each with a Disconnect button (a sign-in
    page first when nobody is signed in)."""
    sessions = components.browser_sessions
    browser = await sessions.current(session, request.cookies.get(COOKIE))
    user = await components.sign_in.user_of(session, browser)
    if browser is None or user is None:
        cookie = None
        if browser is None:
            cookie, browser = await sessions.start(session)
        return _with_cookie(request, _login(browser.csrf_token), cookie)
    apps = []
    for consent in await components.sign_in.connected(session, user):
        client = await components.clients.find(lambda: session, consent.client_id)
        apps.append(
            {
                "client_id": consent.client_id,
                "name": (client.name if client else "") or consent.client_id,
                "since": consent.updated_at.strftime("%d %B %Y"),
                "scopes": [describe(s) for s in consent.scope.split()],
            }
        )
    notice = "The app was disconnected." if request.query_params.get("done") else None
    return render(
        "apps.html", username=user.username, apps=apps, csrf_token=browser.csrf_token, notice=notice
    )


async def _checked(
    request: Request, session: SessionDep, components: Components, form: FormData
) -> BrowserSession:
    return await components.browser_sessions.checked(
        session, request.cookies.get(COOKIE), form_text(form, "csrf_token")
    )


@router.post("/login", response_class=HTMLResponse, responses=PAGE, summary="Sign in")
async def apps_login(request: Request, session: SessionDep, components: Components) -> Response:
    """The sign-in form of the connected-apps page (CSRF-protected; lockout and delays apply)."""
    form = await request.form()
    try:
        browser = await _checked(request, session, components, form)
    except FormRefused:
        return render("error.html", status=400, message=FORM_EXPIRED)
    csrf_token = browser.csrf_token
    username, password = form_text(form, "username") or "", form_text(form, "password") or ""
    ctx = RequestOrigin.of(request)
    try:
        user = await components.sign_in.authenticate(session, ctx, username, password, None)
    except LoginThrottled as exc:
        message = f"Too many failed sign-ins. Try again in {exc.retry_after} seconds."
        return _login(csrf_token, 429, error=message, username=username)
    except SignInFailed:
        return _login(csrf_token, 401, error="Wrong user name or password.", username=username)
    cookie, _ = await components.browser_sessions.sign_in(session, browser, user.id)
    return _with_cookie(request, RedirectResponse("/oauth/apps", status_code=303), cookie)


@router.post(
    "/disconnect", response_class=HTMLResponse, responses=PAGE, summary="Disconnect an app"
)
async def disconnect(request: Request, session: SessionDep, components: Components) -> Response:
    """Takes an app's access back: its refresh tokens stop working at once and its access tokens
    are refused by every service within the revocation sync interval."""
    form = await request.form()
    try:
        browser = await _checked(request, session, components, form)
    except FormRefused:
        return render("error.html", status=400, message=FORM_EXPIRED)
    user = await components.sign_in.user_of(session, browser)
    client_id = form_text(form, "client_id")
    if user is None or not client_id:
        return render("error.html", status=400, message=FORM_EXPIRED)
    ctx = RequestOrigin.of(request)
    await components.sign_in.disconnect(session, ctx, user, client_id)
    return RedirectResponse("/oauth/apps?done=1", status_code=303)
