"""What the authorization code flow refuses: each with the right error and nothing issued."""

from __future__ import annotations

from datetime import timedelta

import pytest

from medmesh.platform.db import utcnow
from tests.auth.authorize.flow import (
    REDIRECT_URI,
    App,
    authorize,
    create_patient,
    exchange,
    form_fields,
    post_form,
    query_of,
    register_app,
)
from tests.auth.conftest import AuthHarness


@pytest.fixture
async def app(auth: AuthHarness) -> App:
    await create_patient(auth)
    return await register_app(auth)


async def _nothing_issued(auth: AuthHarness, app: App) -> None:
    assert await auth.count(f"refresh_tokens WHERE client_id = '{app.client_id}'") == 0


@pytest.mark.parametrize(
    "verifier", ["", "x" * 43, "not a valid verifier because of spaces and length ok"]
)
async def test_a_missing_or_wrong_verifier_is_refused(
    auth: AuthHarness, app: App, verifier: str
) -> None:
    code = await authorize(auth.http, app)
    response = await exchange(auth.http, app, code, code_verifier=verifier)
    assert response.status_code == 400
    assert response.json()["error"] == ("invalid_request" if not verifier else "invalid_grant")
    await _nothing_issued(auth, app)


async def test_a_reused_code_is_refused_and_revokes_what_it_issued(
    auth: AuthHarness, app: App
) -> None:
    code = await authorize(auth.http, app)
    first = (await exchange(auth.http, app, code)).json()
    assert (await auth.introspect(first["access_token"]))["active"] is True
    second = await exchange(auth.http, app, code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert (await auth.introspect(first["access_token"]))["active"] is False
    refreshed = await auth.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": app.client_id,
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"


async def test_an_expired_code_is_refused(
    auth: AuthHarness, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = await authorize(auth.http, app)
    later = utcnow() + timedelta(seconds=auth.settings.authorization_code_ttl_seconds + 1)
    monkeypatch.setattr("medmesh.auth.authorize.codes.utcnow", lambda: later)
    response = await exchange(auth.http, app, code)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "the authorization code has expired",
    }
    await _nothing_issued(auth, app)


async def test_a_code_is_bound_to_its_client(auth: AuthHarness, app: App) -> None:
    other = await register_app(auth)
    code = await authorize(auth.http, app)
    other.verifier = app.verifier
    response = await exchange(auth.http, other, code)
    assert response.json()["error"] == "invalid_grant"
    await _nothing_issued(auth, app)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT_URI + "/more",
        "https://app.example/",
        REDIRECT_URI + "?next=https://evil.example",
        "https://evil.example/callback",
        "https://app.example/callback#x",
    ],
)
async def test_an_unregistered_redirect_uri_gets_a_page_not_a_redirect(
    auth: AuthHarness, app: App, redirect_uri: str
) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params(redirect_uri=redirect_uri))
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "has not registered" in page.text


async def test_the_token_request_must_repeat_the_redirect_uri(auth: AuthHarness, app: App) -> None:
    code = await authorize(auth.http, app)
    response = await exchange(auth.http, app, code, redirect_uri=REDIRECT_URI + "/more")
    assert response.json()["error"] == "invalid_grant"
    await _nothing_issued(auth, app)


async def test_an_unknown_client_gets_a_page(auth: AuthHarness, app: App) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params(client_id="mm_nobody"))
    assert page.status_code == 400
    assert "not registered" in page.text
    assert "location" not in page.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"aud": "https://fhir.elsewhere.example/r4"}, "invalid_request"),
        ({"scope": ""}, "invalid_scope"),
        ({"scope": "system/*.cruds"}, "invalid_scope"),
    ],
)
async def test_a_wrong_request_returns_to_the_app_with_an_error(
    auth: AuthHarness, app: App, overrides: dict[str, str], error: str
) -> None:
    params = app.params(**overrides)
    if overrides.get("scope"):
        # Scopes are checked once a person is signed in.
        await authorize(auth.http, app)
    response = await auth.http.get("/oauth/authorize", params=params)
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert query["error"] == error
    assert query["state"] == app.state
    assert query["iss"] == auth.settings.issuer
    assert "code" not in query


async def test_a_denial_returns_access_denied(auth: AuthHarness, app: App) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params())
    fields = [*form_fields(page.text), ("username", "pat"), ("password", "a long enough password")]
    signed_in = await post_form(auth.http, "/oauth/authorize/login", fields)
    consent = await auth.http.get(signed_in.headers["location"])
    denied = await post_form(
        auth.http, "/oauth/authorize/consent", [*form_fields(consent.text), ("decision", "deny")]
    )
    assert denied.status_code == 303
    assert query_of(denied.headers["location"])["error"] == "access_denied"


async def test_the_cleanup_deletes_expired_codes_and_sign_in_sessions(
    auth: AuthHarness, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    await authorize(auth.http, app)
    assert await auth.count("authorization_codes") == 1
    assert await auth.count("browser_sessions") == 1
    codes = auth.app.state.auth.codes
    # The sign-in session goes when it expires; the code a day later (its session's access
    # tokens may live that long, and disconnecting the app finds them through it).
    later = utcnow() + timedelta(seconds=auth.settings.browser_session_ttl_seconds + 1)
    monkeypatch.setattr("medmesh.auth.authorize.codes.utcnow", lambda: later)
    assert await codes.forget_expired() == 1
    assert await auth.count("authorization_codes") == 1
    much_later = utcnow() + timedelta(days=2)
    monkeypatch.setattr("medmesh.auth.authorize.codes.utcnow", lambda: much_later)
    assert await codes.forget_expired() == 1
    assert await auth.count("authorization_codes") == 0
    assert await auth.count("browser_sessions") == 0


async def test_a_request_without_a_redirect_uri_gets_a_page(auth: AuthHarness, app: App) -> None:
    page = await auth.http.get("/oauth/authorize", params=app.params(redirect_uri=""))
    assert page.status_code == 400
    assert "did not say where to return" in page.text
    assert "location" not in page.headers
