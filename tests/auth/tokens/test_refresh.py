"""The refresh_token grant: rotation, reuse detection, disabled users, scope narrowing."""

from __future__ import annotations

from medmesh.auth.bootstrap import DEMO_SERVICE_CLIENT_ID
from tests.auth.conftest import AuthHarness, bearer, claims_of


async def _session(auth: AuthHarness, **form: str) -> dict[str, str]:
    response = await auth.login(**form)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def test_refresh_rotates_the_token(auth: AuthHarness) -> None:
    first = await _session(auth)
    response = await auth.refresh(first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["sub"] == claims_of(first["access_token"])["sub"]
    assert (await auth.refresh(second["refresh_token"])).status_code == 200


async def test_a_rotated_token_cannot_be_used_again(auth: AuthHarness) -> None:
    first = await _session(auth)
    assert (await auth.refresh(first["refresh_token"])).status_code == 200
    again = await auth.refresh(first["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_reuse_revokes_the_whole_family(auth: AuthHarness) -> None:
    first = await _session(auth)
    second = (await auth.refresh(first["refresh_token"])).json()
    third = (await auth.refresh(second["refresh_token"])).json()
    other_session = await _session(auth)

    reuse = await auth.refresh(first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"

    newest = await auth.refresh(third["refresh_token"])
    assert newest.status_code == 400
    assert newest.json()["error"] == "invalid_grant"
    # Another session of the same user is a different family and keeps working.
    assert (await auth.refresh(other_session["refresh_token"])).status_code == 200

    events = await auth.audit_events(action="auth.refresh_reuse")
    assert len(events) == 1
    assert events[0]["outcome"] == "failure"
    assert events[0]["actor"] == claims_of(first["access_token"])["sub"]
    assert events[0]["details"]["action"] == "family_revoked"
    async with auth.database.engine.connect() as conn:
        from sqlalchemy import text

        rows = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM refresh_tokens WHERE family_id = :f AND revoked_at IS NULL"
                ),
                {"f": events[0]["details"]["family"]},
            )
        ).scalar_one()
    assert rows == 0


async def test_refresh_after_the_user_is_disabled(auth: AuthHarness) -> None:
    user = await auth.create_user("nurse.joy", roles=["clinician"])
    session = await _session(auth, username="nurse.joy", password="a long enough password")
    response = await auth.http.patch(
        f"/admin/users/{user['id']}", json={"disabled": True}, headers=await auth.admin_headers()
    )
    assert response.status_code == 200
    refreshed = await auth.refresh(session["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    login = await auth.login("nurse.joy", "a long enough password")
    assert login.status_code == 400
    assert login.json()["error"] == "invalid_grant"


async def test_refresh_can_narrow_the_scope(auth: AuthHarness) -> None:
    first = await _session(auth)
    narrowed = await auth.refresh(first["refresh_token"], scope="openid audit:read")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["scope"] == "openid audit:read"
    assert claims_of(body["access_token"])["scope"] == "openid audit:read"
    widened = await auth.refresh(body["refresh_token"], scope="openid auth:admin")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


async def test_refresh_token_of_another_client_is_invalid(auth: AuthHarness) -> None:
    client = await auth.create_client(
        grant_types=["password", "refresh_token"], scope="openid audit:read"
    )
    first = await _session(auth)
    response = await auth.refresh(first["refresh_token"], client_id=client["client_id"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # The owner can still use it: a foreign client's attempt is not a reuse.
    assert (await auth.refresh(first["refresh_token"])).status_code == 200


async def test_unknown_refresh_token(auth: AuthHarness) -> None:
    response = await auth.refresh("mmrt_not-a-real-token")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_client_without_refresh_grant_gets_no_refresh_token(auth: AuthHarness) -> None:
    await auth.create_user("clin.a", roles=["clinician"])
    client = await auth.create_client(grant_types=["password"], scope="openid user/*.cruds")
    response = await auth.login("clin.a", "a long enough password", client_id=client["client_id"])
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json()
    refresh = await auth.refresh("mmrt_x", client_id=client["client_id"])
    assert refresh.json()["error"] == "unauthorized_client"


async def test_role_change_applies_on_refresh(auth: AuthHarness) -> None:
    user = await auth.create_user("clin.b", roles=["clinician"])
    session = await _session(auth, username="clin.b", password="a long enough password")
    assert "user/*.cruds" in session["scope"].split()
    response = await auth.http.patch(
        f"/admin/users/{user['id']}",
        json={"roles": ["auditor"]},
        headers=await auth.admin_headers(),
    )
    assert response.status_code == 200
    refreshed = (await auth.refresh(session["refresh_token"])).json()
    assert "user/*.cruds" not in refreshed["scope"].split()
    assert DEMO_SERVICE_CLIENT_ID not in refreshed["scope"]
    me = await auth.http.get("/oauth/userinfo", headers=bearer(refreshed["access_token"]))
    assert me.json()["roles"] == ["auditor"]
