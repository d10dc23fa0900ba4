"""RFC 7009 revocation."""

from __future__ import annotations

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID
from tests.auth.conftest import AuthHarness, bearer, claims_of


async def _revoke(auth: AuthHarness, token: str, client_id: str, **form: str) -> int:
    response = await auth.http.post(
        "/oauth/revoke", data={"token": token, **form}, headers=auth.basic(client_id)
    )
    return response.status_code


async def test_revoking_a_refresh_token_revokes_its_family(auth: AuthHarness) -> None:
    first = (await auth.login()).json()
    second = (await auth.refresh(first["refresh_token"])).json()
    assert (
        await _revoke(auth, first["refresh_token"], CLI_CLIENT_ID, token_type_hint="refresh_token")
        == 200
    )
    refreshed = await auth.refresh(second["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    events = await auth.audit_events(action="auth.token_revoked")
    assert events[-1]["details"]["token_type"] == "refresh_token"
    assert events[-1]["actor"] == claims_of(first["access_token"])["sub"]


async def test_revoking_an_access_token(auth: AuthHarness) -> None:
    session = (await auth.login()).json()
    access = session["access_token"]
    assert (await auth.http.get("/admin/users", headers=bearer(access))).status_code == 200
    assert await _revoke(auth, access, CLI_CLIENT_ID, token_type_hint="access_token") == 200
    assert await auth.introspect(access) == {"active": False}
    refused = await auth.http.get("/admin/users", headers=bearer(access))
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert "invalid_token" in refused.headers["www-authenticate"]
    assert await auth.count("revocations") == 1
    events = await auth.audit_events(action="auth.token_revoked")
    assert events[-1]["details"] == {"token_type": "access_token", "jti": claims_of(access)["jti"]}


async def test_a_client_cannot_revoke_another_clients_tokens(auth: AuthHarness) -> None:
    session = (await auth.login()).json()
    assert await _revoke(auth, session["access_token"], DEMO_SERVICE_CLIENT_ID) == 200
    assert await _revoke(auth, session["refresh_token"], DEMO_SERVICE_CLIENT_ID) == 200
    assert (await auth.introspect(session["access_token"]))["active"] is True
    assert (await auth.refresh(session["refresh_token"])).status_code == 200


async def test_unknown_token_is_200(auth: AuthHarness) -> None:
    assert await _revoke(auth, "never-issued", DEMO_SERVICE_CLIENT_ID) == 200
    assert await _revoke(auth, "mmrt_never-issued", DEMO_SERVICE_CLIENT_ID) == 200
    assert await auth.count("revocations") == 0


async def test_bad_token_type_hint(auth: AuthHarness) -> None:
    response = await auth.http.post(
        "/oauth/revoke",
        data={"token": "x", "token_type_hint": "id_token"},
        headers=auth.basic(DEMO_SERVICE_CLIENT_ID),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_token_type"


async def test_revocation_requires_client_authentication(auth: AuthHarness) -> None:
    response = await auth.http.post("/oauth/revoke", data={"token": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_cleanup_deletes_expired_revocations_and_refresh_tokens(auth: AuthHarness) -> None:
    access = await auth.access_token()
    assert await _revoke(auth, access, DEMO_SERVICE_CLIENT_ID) == 200
    await auth.login()
    from sqlalchemy import text

    async with auth.database.engine.begin() as conn:
        await conn.execute(text("UPDATE revocations SET keep_until = '2000-01-01 00:00:00'"))
        await conn.execute(text("UPDATE refresh_tokens SET expires_at = '2000-01-01 00:00:00'"))
    assert await auth.app.state.auth.tokens.revoker.cleanup() == (1, 1)
    assert await auth.count("revocations") == 0
    assert await auth.count("refresh_tokens") == 0
