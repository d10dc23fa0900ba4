"""The sign-in and consent pages: what a person sees, and what protects their forms."""

from __future__ import annotations

import pytest

from tests.auth.authorize.flow import (
    App,
    create_patient,
    form_fields,
    login,
    post_form,
    register_app,
)
from tests.auth.conftest import AuthFactory, AuthHarness


@pytest.fixture
async def app(auth: AuthHarness) -> App:
    await create_patient(auth)
    return await register_app(auth)


async def test_the_login_page_is_accessible_and_locked_down(auth: AuthHarness, app: App) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params())
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in page.text
    assert '<label for="username">User name</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert "<h1>Sign in</h1>" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self' https://app.example" in csp
    assert "script-src" not in csp
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/oauth" in cookie
    assert "Secure" not in cookie  # local development


async def test_the_session_cookie_is_secure_outside_development(
    auth_factory: AuthFactory,
) -> None:
    async with auth_factory(environment="staging") as auth:
        app = await register_app(auth)
        page = await auth.http.get("/oauth/authorize", params=app.params())
        assert "Secure" in page.headers["set-cookie"]


async def test_the_consent_page_lists_scopes_in_plain_words(auth: AuthHarness, app: App) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params())
    consent = await auth.http.get(
        (await login(auth.http, page, "pat", "a long enough password")).headers["location"]
    )
    assert consent.status_code == 200
    text = consent.text
    assert '<h1>Allow <span class="app">Growth chart</span> to use your account?</h1>' in text
    assert "Read and search your patient records" in text
    assert "Read and search your observation records" in text
    assert "Stay connected when you are not using it" in text
    # Required scopes carry no checkbox; optional ones can be unticked.
    ticks = [value for name, value in form_fields(text) if name == "grant"]
    assert ticks == ["offline_access", "patient/Patient.rs", "patient/Observation.rs"]
    assert "frame-ancestors 'none'" in consent.headers["content-security-policy"]


async def test_a_forged_csrf_token_is_refused(auth: AuthHarness, app: App) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params())
    fields = [(n, "forged" if n == "csrf_token" else v) for n, v in form_fields(page.text)] + [
        ("username", "pat"),
        ("password", "a long enough password"),
    ]
    response = await post_form(auth.http, "/oauth/authorize/login", fields)
    assert response.status_code == 400
    assert "not sent by a page of this sign-in" in response.text
    assert "set-cookie" not in response.headers


async def test_a_login_form_without_the_session_cookie_is_refused(
    auth: AuthHarness, app: App
) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params())
    auth.http.cookies.clear()
    response = await login(auth.http, page, "pat", "a long enough password")
    assert response.status_code == 400
    assert "not sent by a page of this sign-in" in response.text


async def test_a_wrong_password_shows_the_page_again_and_counts(
    auth: AuthHarness, app: App
) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params())
    response = await login(auth.http, page, "pat", "wrong password")
    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert 'value="pat"' in response.text
    failures = [
        e for e in await auth.audit_events(action="auth.login") if e["outcome"] == "failure"
    ]
    assert failures


async def test_the_account_lockout_applies(auth_factory: AuthFactory) -> None:
    async with auth_factory(login_lockout_after_failures=2, login_delay_after_failures=5) as auth:
        await create_patient(auth)
        app = await register_app(auth)
        page = await auth.http.get("/oauth/authorize", params=app.params())
        for _ in range(2):
            await login(auth.http, page, "pat", "wrong password")
        locked = await login(auth.http, page, "pat", "a long enough password")
        assert locked.status_code == 429
        assert "Too many failed sign-ins" in locked.text


async def test_the_consent_form_needs_a_signed_in_session(auth: AuthHarness, app: App) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params())
    response = await post_form(
        auth.http, "/oauth/authorize/consent", [*form_fields(page.text), ("decision", "allow")]
    )
    assert response.status_code == 400
    assert "location" not in response.headers
