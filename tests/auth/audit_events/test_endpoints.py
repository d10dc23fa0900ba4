"""GET /admin/audit-events: the auth-service's audit trail for auditors."""

from __future__ import annotations

from tests.auth.conftest import AuthHarness, bearer


async def test_audit_events_filters_and_pages(auth: AuthHarness) -> None:
    await auth.token()
    await auth.login(password="wrong password")
    admin = await auth.admin_headers()
    everything = await auth.audit_events()
    actions = [e["action"] for e in everything]
    assert "auth.token_issued" in actions
    assert "auth.login" in actions
    assert [e["seq"] for e in everything] == sorted(e["seq"] for e in everything)
    assert all(len(e["hash"]) == 64 for e in everything)

    page = (await auth.http.get("/admin/audit-events", params={"limit": 1}, headers=admin)).json()
    assert len(page["data"]) == 1
    after = page["next_after_seq"]
    nxt = (
        await auth.http.get(
            "/admin/audit-events", params={"limit": 1, "after_seq": after}, headers=admin
        )
    ).json()
    assert nxt["data"][0]["seq"] == after + 1

    by_actor = await auth.audit_events(actor="demo-service")
    assert by_actor
    assert all(e["actor"] == "demo-service" for e in by_actor)
    failures = [
        e for e in await auth.audit_events(action="auth.login") if e["outcome"] == "failure"
    ]
    assert failures[0]["details"] == {"reason": "bad_credentials"}
    assert "wrong password" not in str(everything)


async def test_audit_events_need_audit_read(auth: AuthHarness) -> None:
    service = bearer(await auth.access_token())
    assert (await auth.http.get("/admin/audit-events", headers=service)).status_code == 403
    assert (await auth.http.get("/admin/audit-events")).status_code == 401
