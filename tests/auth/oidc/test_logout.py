"""RP-initiated logout: only to a registered post_logout_redirect_uri, and the session ends."""

from __future__ import annotations

import pytest

from tests.auth.authorize.flow import authorize, create_patient, exchange, register_app
from tests.auth.conftest import AuthHarness


async def test_logout_returns_to_a_registered_uri_and_ends_the_session(
    auth: AuthHarness,
) -> None:
    app = await register_app(auth)
    await create_patient(auth)
    body = (await exchange(auth.http, app, await authorize(auth.http, app))).json()
    response = await auth.http.get(
        "/oauth/logout",
        params={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": "https://app.example/bye",
            "state": "s-1",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://app.example/bye?state=s-1"
    # Signed out: the next launch asks the person to sign in again.
    page = await auth.http.get("/oauth/authorize", params=app.params())
    assert 'action="/oauth/authorize/login"' in page.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/bye",
        "https://app.example/bye/more",
        "https://app.example/bye?next=https://evil.example",
        "https://app.example/callback",
    ],
)
async def test_an_open_redirect_through_logout_is_refused(auth: AuthHarness, target: str) -> None:
    app = await register_app(auth)
    response = await auth.http.get(
        "/oauth/logout", params={"client_id": app.client_id, "post_logout_redirect_uri": target}
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "has not registered" in response.text


async def test_a_redirect_without_a_known_app_is_refused(auth: AuthHarness) -> None:
    response = await auth.http.get(
        "/oauth/logout", params={"post_logout_redirect_uri": "https://app.example/bye"}
    )
    assert response.status_code == 400


async def test_logout_without_a_redirect_shows_a_page(auth: AuthHarness) -> None:
    response = await auth.http.get("/oauth/logout")
    assert response.status_code == 200
    assert "You are signed out" in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
