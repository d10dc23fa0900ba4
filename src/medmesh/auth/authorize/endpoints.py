"""The authorization endpoint (RFC 6749 §4.1, OAuth 2.1, OIDC, SMART App Launch) and the pages a
person sees on the way: sign-in and consent."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from medmesh.auth.authorize.pages import form_text, origin_of, render
from medmesh.auth.authorize.requests import (
    PARAMETERS,
    REQUIRED_SCOPES,
    AuthorizationDenied,
    AuthorizationRequest,
    UntrustedRequest,
    check_client,
    parse,
)
from medmesh.auth.authorize.service import SignInFailed
from medmesh.auth.authorize.sessions import COOKIE, FormRefused, set_session_cookie
from medmesh.auth.authorize.wording import describe
from medmesh.auth.components import AuthComponents, AuthState, Components
from medmesh.auth.config import AuthSettings
from medmesh.auth.logins.service import LoginThrottled
from medmesh.auth.models import BrowserSession, LaunchContext, User
from medmesh.platform.db import SessionDep
from medmesh.platform.origin import RequestOrigin

router = APIRouter(prefix="/oauth", tags=["sign-in"])
PAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "a page for the person"}
}
NOT_YOURS = "You may not open this patient's record, or there is no such record."
FORM_EXPIRED = (
    "This form was not sent by a page of this sign-in, or it has expired. "
    "Go back to the app and start again."
)


def _single(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    """The parameters, or None when one repeats (RFC 6749 §3.1)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            return None
        params[name] = value
    return params


def _form_params(form: FormData) -> dict[str, str]:
    return {name: str(form[name]) for name in PARAMETERS if isinstance(form.get(name), str)}


class _Flow:
    """One request of the sign-in flow: its app, settings, services and browser session."""

    def __init__(self, request: Request, session: AsyncSession, components: AuthComponents):
        self.request, self.session, self.components = request, session, components
        self.settings: AuthSettings = AuthState.of(request.app).settings
        self.cookie: str | None = None
        #: The EHR launch's context (a ``launch`` parameter), checked with the request.
        self.launch: LaunchContext | None = None

    async def checked(self, params: dict[str, str] | None) -> AuthorizationRequest:
        if params is None:
            raise UntrustedRequest("A parameter of the request is repeated.")
        client = await self.components.clients.find(
            lambda: self.session, params.get("client_id", "")
        )
        trusted, redirect_uri = check_client(client, params)
        req = parse(trusted, redirect_uri, params, self.settings.fhir_base_urls)
        value = req.params.get("launch")
        if value:
            self.launch = await self.components.launches.find(
                self.session, trusted.client_id, value
            )
            if self.launch is None:
                raise AuthorizationDenied(
                    req, "invalid_request", "launch is unknown, expired, used or for another app"
                )
        return req

    def launch_patient(self, req: AuthorizationRequest, user: User) -> str | None:
        """The patient the EHR launch put in context; a patient signing in may only be it."""
        patient = self.launch.patient if self.launch is not None else None
        if patient is not None and user.patient_id is not None and user.patient_id != patient:
            raise AuthorizationDenied(
                req, "access_denied", "the launch's patient is not the person signed in"
            )
        return patient

    def needs_pick(self, scope: list[str], user: User) -> bool:
        """A standalone launch asking for a patient, by someone who is not a patient."""
        if self.launch is not None and self.launch.patient is not None:
            return False
        return "launch/patient" in scope and user.patient_id is None

    def finish(self, response: Response) -> Response:
        if self.cookie is None:
            return response
        return set_session_cookie(response, self.cookie, self.settings)

    def page(self, template: str, req: AuthorizationRequest, **context: Any) -> Response:
        return self.finish(
            render(
                template,
                form_targets=[origin_of(req.redirect_uri)],
                app_name=req.client.name or req.client.client_id,
                params=req.params,
                **context,
            )
        )

    async def login_page(
        self, req: AuthorizationRequest, csrf_token: str | None, **context: Any
    ) -> Response:
        """The sign-in page (a session starts here when the browser has none)."""
        if csrf_token is None:
            self.cookie, browser = await self.components.browser_sessions.start(self.session)
            csrf_token = browser.csrf_token
        context.setdefault("status", 200)
        context.setdefault("username", "")
        return self.page(
            "login.html", req, csrf_token=csrf_token, action="/oauth/authorize/login", **context
        )

    async def code_redirect(
        self,
        req: AuthorizationRequest,
        user: User,
        browser: BrowserSession,
        scope: list[str],
        picked: str | None = None,
    ) -> Response:
        patient = (picked or user.patient_id) if "launch/patient" in scope else None
        launch = self.launch
        if launch is not None:
            patient = self.launch_patient(req, user)
            if not await self.components.launches.use(self.session, launch):
                raise AuthorizationDenied(req, "invalid_request", "launch was used already")
        auth_time = browser.auth_time or browser.created_at
        code = await self.components.codes.issue(
            self.session,
            req,
            user.id,
            " ".join(scope),
            patient,
            auth_time,
            browser_session=browser.id_hash,
            encounter=launch.encounter if launch is not None else None,
            need_patient_banner=launch.need_patient_banner if launch is not None else None,
        )
        location = req.redirect(self.settings.issuer, code=code)
        return self.finish(RedirectResponse(location, status_code=303))

    async def proceed(self, req: AuthorizationRequest) -> Response:
        """Sign in, ask for consent, or (consent remembered) send the code."""
        browser = await self.components.browser_sessions.current(
            self.session, self.request.cookies.get(COOKIE)
        )
        user = await self.components.sign_in.user_of(self.session, browser)
        prompt = req.params.get("prompt", "").split()
        if user is None or browser is None or "login" in prompt:
            if "none" in prompt:
                raise AuthorizationDenied(req, "login_required", "the person is not signed in")
            return await self.login_page(req, browser.csrf_token if browser else None)
        sign_in = self.components.sign_in
        scope = await sign_in.grantable(self.session, req, user)
        self.launch_patient(req, user)
        if self.needs_pick(scope, user):
            return self.picker(req, browser)
        if "consent" not in prompt and await sign_in.consented(
            self.session, user, req.client.client_id, scope
        ):
            return await self.code_redirect(req, user, browser, scope)
        if "none" in prompt:
            raise AuthorizationDenied(req, "consent_required", "the person has not consented")
        return self.consent_page(req, browser, user, scope, self.launch_patient(req, user))

    def picker(
        self, req: AuthorizationRequest, browser: BrowserSession, **context: Any
    ) -> Response:
        """The patient picker of a practitioner's standalone launch."""
        context.setdefault("status", 200)
        return self.page("patient.html", req, csrf_token=browser.csrf_token, **context)

    def consent_page(
        self,
        req: AuthorizationRequest,
        browser: BrowserSession,
        user: User,
        scope: list[str],
        patient: str | None = None,
    ) -> Response:
        return self.page(
            "consent.html",
            req,
            csrf_token=browser.csrf_token,
            username=user.username,
            patient=patient,
            required=[{"scope": s, "words": describe(s)} for s in scope if s in REQUIRED_SCOPES],
            optional=[
                {"scope": s, "words": describe(s)} for s in scope if s not in REQUIRED_SCOPES
            ],
        )


async def _run(flow: _Flow, params: dict[str, str] | None, step: str, form: FormData) -> Response:
    try:
        req = await flow.checked(params)
        if step == "authorize":
            return await flow.proceed(req)
        browser = await flow.components.browser_sessions.checked(
            flow.session, flow.request.cookies.get(COOKIE), form_text(form, "csrf_token")
        )
        if step == "login":
            return await _login(flow, req, browser, form)
        if step == "patient":
            return await _pick(flow, req, browser, form)
        return await _consent(flow, req, browser, form)
    except UntrustedRequest as exc:
        return render("error.html", status=400, message=exc.message)
    except FormRefused:
        return render("error.html", status=400, message=FORM_EXPIRED)
    except AuthorizationDenied as exc:
        return flow.finish(RedirectResponse(exc.location(flow.settings.issuer), status_code=303))


async def _login(
    flow: _Flow, req: AuthorizationRequest, browser: BrowserSession, form: FormData
) -> Response:
    components, session = flow.components, flow.session
    ctx = RequestOrigin.of(flow.request)
    # A failed attempt rolls the session back (expiring ``browser``): keep its token at hand.
    csrf_token = browser.csrf_token
    username, password = form_text(form, "username") or "", form_text(form, "password") or ""
    try:
        user = await components.sign_in.authenticate(
            session, ctx, username, password, req.client.client_id
        )
    except LoginThrottled as exc:
        message = f"Too many failed sign-ins. Try again in {exc.retry_after} seconds."
        return await flow.login_page(req, csrf_token, status=429, error=message, username=username)
    except SignInFailed:
        return await flow.login_page(
            req, csrf_token, status=401, error="Wrong user name or password.", username=username
        )
    flow.cookie, _ = await components.browser_sessions.sign_in(session, browser, user.id)
    # Signed in now: prompt=login is satisfied (asking again would loop).
    params = dict(req.params)
    prompt = [value for value in params.pop("prompt", "").split() if value != "login"]
    if prompt:
        params["prompt"] = " ".join(prompt)
    location = "/oauth/authorize?" + urlencode(params)
    return flow.finish(RedirectResponse(location, status_code=303))


async def _consent(
    flow: _Flow, req: AuthorizationRequest, browser: BrowserSession, form: FormData
) -> Response:
    sign_in = flow.components.sign_in
    user = await sign_in.user_of(flow.session, browser)
    if user is None:
        raise FormRefused()
    if form_text(form, "decision") != "allow":
        raise AuthorizationDenied(req, "access_denied", "the person denied the request")
    ticked = {str(value) for value in form.getlist("grant")}
    grantable = await sign_in.grantable(flow.session, req, user)
    scope = [s for s in grantable if s in REQUIRED_SCOPES or s in ticked]
    picked = None
    if flow.needs_pick(scope, user):
        # Checked again: the form's hidden field is the browser's word, not ours.
        picked = form_text(form, "patient") or ""
        if not await _may_open(flow, req, user, picked):
            return flow.picker(req, browser, status=403, error=NOT_YOURS)
    await sign_in.remember(flow.session, user, req.client.client_id, scope)
    return await flow.code_redirect(req, user, browser, scope, picked)


async def _may_open(flow: _Flow, req: AuthorizationRequest, user: User, patient_id: str) -> bool:
    held = await flow.components.roles.scopes_of(flow.session, user.roles)
    return await flow.components.patients.may_open(held, req, user, patient_id)


async def _pick(
    flow: _Flow, req: AuthorizationRequest, browser: BrowserSession, form: FormData
) -> Response:
    user = await flow.components.sign_in.user_of(flow.session, browser)
    if user is None:
        raise FormRefused()
    scope = await flow.components.sign_in.grantable(flow.session, req, user)
    patient_id = (form_text(form, "patient") or "").strip()
    if not await _may_open(flow, req, user, patient_id):
        return flow.picker(req, browser, status=403, error=NOT_YOURS, patient=patient_id)
    return flow.consent_page(req, browser, user, scope, patient_id)


@router.get(
    "/authorize",
    response_class=HTMLResponse,
    responses=PAGE,
    summary="Authorization endpoint (sign in an app's user)",
)
async def authorize_get(request: Request, session: SessionDep, components: Components) -> Response:
    """The start of the authorization code flow (PKCE S256 required): the person signs in,
    approves what the app may do, and returns to the app's registered `redirect_uri` with a
    `code` and the `state` it sent. A wrong request returns there with an `error`; an unknown
    client or redirect URI gets an error page instead."""
    flow = _Flow(request, session, components)
    return await _run(flow, _single(request.query_params.multi_items()), "authorize", FormData())


@router.post(
    "/authorize",
    response_class=HTMLResponse,
    responses=PAGE,
    summary="Authorization endpoint (parameters in a form)",
)
async def authorize_post(request: Request, session: SessionDep, components: Components) -> Response:
    """The same as GET, with the parameters posted as a form (SMART `authorize-post`)."""
    form = await request.form()
    pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    return await _run(_Flow(request, session, components), _single(pairs), "authorize", form)


@router.post(
    "/authorize/login", response_class=HTMLResponse, responses=PAGE, summary="Sign-in form"
)
async def authorize_login(
    request: Request, session: SessionDep, components: Components
) -> Response:
    """The sign-in page's form (CSRF-protected; the account lockout and delays apply)."""
    form = await request.form()
    return await _run(_Flow(request, session, components), _form_params(form), "login", form)


@router.post(
    "/authorize/patient", response_class=HTMLResponse, responses=PAGE, summary="Patient picker"
)
async def authorize_patient(
    request: Request, session: SessionDep, components: Components
) -> Response:
    """The patient picker's form (a practitioner's standalone launch with `launch/patient`):
    the patient is taken only when phi lets the practitioner read their record."""
    form = await request.form()
    return await _run(_Flow(request, session, components), _form_params(form), "patient", form)


@router.post(
    "/authorize/consent", response_class=HTMLResponse, responses=PAGE, summary="Consent form"
)
async def authorize_consent(
    request: Request, session: SessionDep, components: Components
) -> Response:
    """The consent page's form: `decision` allow or deny, one `grant` per optional scope kept."""
    form = await request.form()
    return await _run(_Flow(request, session, components), _form_params(form), "consent", form)
