"""User, client, session and token state, checked by auth on every request (issue #13 item 4).

A disabled or deleted user, a disabled or deleted client, a revoked refresh family and a revoked
access token are refused by the admin API and reported inactive by introspection at once, on this
replica and on another one sharing the database; the published list names them only by hash.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID
from medmesh.platform.tokens import revocation_key
from tests.auth.conftest import AuthFactory, AuthHarness, bearer, claims_of

PASSWORD = "a long enough password"
REVOKED = {
    "type": "about:blank",
    "title": "Unauthorized",
    "status": 401,
    "code": "invalid_token",
    "detail": "token has been revoked",
}


def assert_refused(response: httpx.Response) -> None:
    """The exact answer to a revoked token: 401 invalid_token with its challenge."""
    assert response.status_code == 401, response.text
    assert response.json() == REVOKED
    assert response.headers["www-authenticate"] == (
        'Bearer realm="medmesh", error="invalid_token", error_description="token has been revoked"'
    )


async def _operator(auth: AuthHarness, name: str = "operator") -> tuple[str, str]:
    """A second administrator (the harness keeps using the bootstrapped one); id and token."""
    user = await auth.create_user(name, PASSWORD, roles=["admin"])
    session = await auth.login(name, PASSWORD)
    assert session.status_code == 200, session.text
    return user["id"], session.json()["access_token"]


async def _next_second(after: float) -> None:
    # A token issued in the second of a revocation is refused too; wait for the next one.
    await asyncio.sleep(max(0.0, int(after) + 1 - time.time()) + 0.01)


async def test_a_disabled_users_token_is_refused_and_inactive(auth: AuthHarness) -> None:
    user_id, token = await _operator(auth)
    assert (await auth.http.get("/admin/users", headers=bearer(token))).status_code == 200

    disabled = await auth.http.patch(
        f"/admin/users/{user_id}", json={"disabled": True}, headers=await auth.admin_headers()
    )
    assert disabled.status_code == 200
    assert_refused(await auth.http.get("/admin/users", headers=bearer(token)))
    new_admin = {"username": "mallory", "password": PASSWORD, "roles": ["admin"]}
    assert_refused(await auth.http.post("/admin/users", json=new_admin, headers=bearer(token)))
    assert await auth.introspect(token) == {"active": False}
    assert (await auth.login("mallory", PASSWORD)).status_code == 400  # never created


async def test_enabling_a_user_again_does_not_bring_back_their_old_tokens(
    auth: AuthHarness,
) -> None:
    user_id, old = await _operator(auth)
    admin = await auth.admin_headers()
    await auth.http.patch(f"/admin/users/{user_id}", json={"disabled": True}, headers=admin)
    disabled_at = time.time()
    enabled = await auth.http.patch(
        f"/admin/users/{user_id}", json={"disabled": False}, headers=admin
    )
    assert enabled.json()["disabled"] is False

    assert_refused(await auth.http.get("/admin/users", headers=bearer(old)))
    assert await auth.introspect(old) == {"active": False}
    await _next_second(disabled_at)
    fresh = (await auth.login("operator", PASSWORD)).json()["access_token"]
    assert (await auth.http.get("/admin/users", headers=bearer(fresh))).status_code == 200
    assert (await auth.introspect(fresh))["active"] is True


async def test_a_deleted_users_token_is_refused_and_inactive(auth: AuthHarness) -> None:
    user_id, token = await _operator(auth)
    deleted = await auth.http.delete(f"/admin/users/{user_id}", headers=await auth.admin_headers())
    assert deleted.status_code == 204
    assert_refused(await auth.http.get("/admin/clients", headers=bearer(token)))
    assert await auth.introspect(token) == {"active": False}


async def _robot(auth: AuthHarness, client_id: str = "ops-robot") -> str:
    """A client whose own tokens administer auth; returns such a token."""
    await auth.create_client(client_id=client_id, scope="auth:admin")
    return await auth.access_token(client_id, scope="auth:admin")


async def test_a_disabled_clients_tokens_are_refused_and_inactive(auth: AuthHarness) -> None:
    token = await _robot(auth)
    assert (await auth.http.get("/admin/roles", headers=bearer(token))).status_code == 200
    # a user's token issued through the client is refused as well
    cli_session = (await auth.login()).json()["access_token"]
    patched = await auth.http.patch(
        "/admin/clients/ops-robot", json={"disabled": True}, headers=bearer(cli_session)
    )
    assert patched.status_code == 200
    assert_refused(await auth.http.get("/admin/roles", headers=bearer(token)))
    assert await auth.introspect(token) == {"active": False}
    assert (await auth.introspect(cli_session))["active"] is True


async def test_a_user_token_issued_through_a_disabled_client_is_refused(
    auth: AuthHarness,
) -> None:
    await auth.create_user("operator", PASSWORD, roles=["admin"])
    await auth.create_client(
        client_id="ops-console", grant_types=["password"], scope="openid auth:admin"
    )
    signed_in = await auth.login("operator", PASSWORD, client_id="ops-console")
    token = signed_in.json()["access_token"]
    assert (await auth.http.get("/admin/users", headers=bearer(token))).status_code == 200
    admin = await auth.admin_headers()
    await auth.http.patch("/admin/clients/ops-console", json={"disabled": True}, headers=admin)
    assert_refused(await auth.http.get("/admin/users", headers=bearer(token)))
    assert await auth.introspect(token) == {"active": False}


async def test_a_deleted_clients_tokens_stay_refused_when_the_id_is_registered_again(
    auth: AuthHarness,
) -> None:
    old = await _robot(auth)
    admin = await auth.admin_headers()
    assert (await auth.http.delete("/admin/clients/ops-robot", headers=admin)).status_code == 204
    deleted_at = time.time()
    assert_refused(await auth.http.get("/admin/roles", headers=bearer(old)))
    assert await auth.introspect(old) == {"active": False}

    await _next_second(deleted_at)
    new = await _robot(auth)
    assert (await auth.http.get("/admin/roles", headers=bearer(new))).status_code == 200
    assert_refused(await auth.http.get("/admin/roles", headers=bearer(old)))


async def test_access_tokens_carry_their_session_across_refreshes(auth: AuthHarness) -> None:
    first = (await auth.login()).json()
    second = (await auth.refresh(first["refresh_token"])).json()
    other = (await auth.login()).json()
    sid = claims_of(first["access_token"])["sid"]
    assert claims_of(second["access_token"])["sid"] == sid
    assert claims_of(other["access_token"])["sid"] != sid
    assert (await auth.introspect(second["access_token"]))["sid"] == sid


async def test_revoking_a_refresh_token_refuses_the_access_tokens_of_its_family(
    auth: AuthHarness,
) -> None:
    first = (await auth.login()).json()
    second = (await auth.refresh(first["refresh_token"])).json()
    other = (await auth.login()).json()
    revoked = await auth.http.post(
        "/oauth/revoke",
        data={"token": second["refresh_token"], "token_type_hint": "refresh_token"},
        headers=auth.basic(CLI_CLIENT_ID),
    )
    assert revoked.status_code == 200
    for access in (first["access_token"], second["access_token"]):
        assert_refused(await auth.http.get("/admin/users", headers=bearer(access)))
        assert await auth.introspect(access) == {"active": False}
    other_session = await auth.http.get("/admin/users", headers=bearer(other["access_token"]))
    assert other_session.status_code == 200


async def test_a_reused_refresh_token_refuses_the_access_tokens_of_its_family(
    auth: AuthHarness,
) -> None:
    first = (await auth.login()).json()
    second = (await auth.refresh(first["refresh_token"])).json()
    reused = await auth.refresh(first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    for access in (first["access_token"], second["access_token"]):
        assert_refused(await auth.http.get("/admin/users", headers=bearer(access)))
        assert await auth.introspect(access) == {"active": False}


async def test_another_replica_refuses_what_this_one_revoked(
    auth: AuthHarness, auth_factory: AuthFactory
) -> None:
    user_id, token = await _operator(auth)
    kek = auth.settings.key_encryption_keys
    async with auth_factory(key_encryption_keys=kek, known_secrets=auth.secrets) as replica:
        assert (await replica.http.get("/admin/users", headers=bearer(token))).status_code == 200
        await auth.http.patch(
            f"/admin/users/{user_id}", json={"disabled": True}, headers=await auth.admin_headers()
        )
        # revocation_sync_seconds is 0 in the tests: the next request syncs
        assert_refused(await replica.http.get("/admin/users", headers=bearer(token)))
        assert await replica.introspect(token) == {"active": False}


async def _revocation_list(auth: AuthHarness, **params: str) -> dict[str, Any]:
    response = await auth.http.get("/oauth/revocations", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def test_the_published_list_names_revocations_only_by_hash(auth: AuthHarness) -> None:
    start = await _revocation_list(auth)
    assert start["revocations"] == []
    assert start["complete"] is True

    user_id, token = await _operator(auth)
    await auth.http.patch(
        f"/admin/users/{user_id}", json={"disabled": True}, headers=await auth.admin_headers()
    )
    access = await auth.access_token()
    await auth.http.post(
        "/oauth/revoke", data={"token": access}, headers=auth.basic(DEMO_SERVICE_CLIENT_ID)
    )
    listed = await _revocation_list(auth, after=start["cursor"])
    keys = [entry["key"] for entry in listed["revocations"]]
    jti = claims_of(access)["jti"]
    assert keys == [revocation_key("sub", user_id), revocation_key("jti", jti)]
    assert listed["complete"] is True
    entry = listed["revocations"][1]
    assert entry["keep_until"] > claims_of(access)["exp"]
    assert abs(entry["revoked_at"] - time.time()) < 3600  # a timestamp in seconds, not ms
    whole = (await auth.http.get("/oauth/revocations")).text
    assert user_id not in whole
    assert jti not in whole
    assert claims_of(token)["sid"] not in whole


async def test_the_list_pages_with_its_cursor(auth: AuthHarness) -> None:
    from medmesh.auth.tokens.revocation_list import revocation_page

    for _ in range(3):
        access = await auth.access_token()
        await auth.http.post(
            "/oauth/revoke", data={"token": access}, headers=auth.basic(DEMO_SERVICE_CLIENT_ID)
        )
    async with auth.database.sessionmaker() as session:
        first = await revocation_page(session, None, limit=2)
        second = await revocation_page(session, first["cursor"], limit=2)
    assert (len(first["revocations"]), first["complete"]) == (2, False)
    assert (len(second["revocations"]), second["complete"]) == (1, True)
    every = (await _revocation_list(auth))["revocations"]
    assert first["revocations"] + second["revocations"] == every
    # caught up, the cursor reads the last seconds again (entries are merged by the reader)
    again = await _revocation_list(auth, after=second["cursor"])
    assert again["revocations"][-1] == every[-1]
    assert all(entry in every for entry in again["revocations"])
    assert again["cursor"] == second["cursor"]


async def test_a_cursor_this_server_did_not_hand_out_is_a_400(auth: AuthHarness) -> None:
    for bad in ("yesterday", "1.2.3", "-5.0", ""):
        response = await auth.http.get("/oauth/revocations", params={"after": bad})
        assert response.status_code == 400, bad
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "after is not a cursor this server handed out",
        }
