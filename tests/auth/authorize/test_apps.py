"""The connected-apps page: a person sees which apps hold access and takes it back."""

from __future__ import annotations

from tests.auth.authorize.flow import (
    PATIENT_PASSWORD,
    authorize,
    create_patient,
    exchange,
    form_fields,
    post_form,
    register_app,
)
from tests.auth.conftest import AuthHarness


async def test_disconnecting_an_app_kills_its_tokens_at_once(auth: AuthHarness) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    tokens = (await exchange(auth.http, app, await authorize(auth.http, app))).json()

    page = await auth.http.get("/oauth/apps")
    assert page.status_code == 200
    assert "<h2>Growth chart</h2>" in page.text
    assert "Read and search your observation records" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    done = await post_form(auth.http, "/oauth/apps/disconnect", form_fields(page.text))
    assert done.status_code == 303
    after = await auth.http.get(done.headers["location"])
    assert "No app holds access to your account." in after.text
    assert "The app was disconnected." in after.text

    refreshed = await auth.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app.client_id,
        },
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert (await auth.introspect(tokens["access_token"]))["active"] is False
    events = await auth.audit_events(action="auth.app_disconnected")
    assert [e["client_id"] for e in events] == [app.client_id]
    # The consent is forgotten: the next launch asks again.
    again = await auth.http.get("/oauth/authorize", params=app.params())
    assert again.status_code == 200
    assert 'action="/oauth/authorize/consent"' in again.text


async def test_the_page_asks_to_sign_in_first(auth: AuthHarness) -> None:
    await create_patient(auth)
    page = await auth.http.get("/oauth/apps")
    assert page.status_code == 200
    assert 'action="/oauth/apps/login"' in page.text
    assert "Sign in to see the apps connected to your account." in page.text
    fields = [*form_fields(page.text), ("username", "pat"), ("password", PATIENT_PASSWORD)]
    signed_in = await post_form(auth.http, "/oauth/apps/login", fields)
    assert signed_in.status_code == 303
    listed = await auth.http.get(signed_in.headers["location"])
    assert "No app holds access to your account." in listed.text


async def test_a_disconnect_with_a_forged_csrf_token_is_refused(auth: AuthHarness) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    tokens = (await exchange(auth.http, app, await authorize(auth.http, app))).json()
    response = await post_form(
        auth.http,
        "/oauth/apps/disconnect",
        [("csrf_token", "forged"), ("client_id", app.client_id)],
    )
    assert response.status_code == 400
    assert (await auth.introspect(tokens["access_token"]))["active"] is True
