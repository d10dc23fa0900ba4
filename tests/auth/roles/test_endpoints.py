"""Admin API of roles; a role's scopes decide what later tokens get."""

from __future__ import annotations

from tests.auth.conftest import AuthHarness, claims_of
from tests.auth.users.test_endpoints import PASSWORD, assert_problem


async def test_builtin_roles_are_listed(auth: AuthHarness) -> None:
    roles = (await auth.http.get("/admin/roles", headers=await auth.admin_headers())).json()
    by_name = {r["name"]: r for r in roles}
    assert set(by_name) >= {
        "admin",
        "clinician",
        "patient",
        "billing",
        "device-manager",
        "auditor",
        "service",
    }
    assert "user/*.cruds" in by_name["clinician"]["scope"].split()
    assert all(r["builtin"] for r in roles)


async def test_custom_role_changes_later_tokens(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    created = await auth.http.put(
        "/admin/roles/lab-tech",
        json={"description": "runs the lab", "scope": "openid user/Observation.rs"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["builtin"] is False
    await auth.create_user("lab.one", roles=["lab-tech"])
    first = (await auth.login("lab.one", PASSWORD)).json()
    assert claims_of(first["access_token"])["scope"] == "openid user/Observation.rs"

    replaced = await auth.http.put(
        "/admin/roles/lab-tech",
        json={"scope": "openid user/Observation.cruds user/Specimen.rs"},
        headers=admin,
    )
    assert replaced.status_code == 200
    second = (await auth.login("lab.one", PASSWORD)).json()
    assert set(claims_of(second["access_token"])["scope"].split()) == {
        "openid",
        "user/Observation.cruds",
        "user/Specimen.rs",
    }
    # Refreshing an older session follows the role too (it can only shrink, never grow).
    refreshed = (await auth.refresh(first["refresh_token"])).json()
    assert claims_of(refreshed["access_token"])["scope"] == "openid user/Observation.rs"

    events = [
        e
        for e in await auth.audit_events(action="auth.role_saved")
        if e["resource_id"] == "lab-tech"
    ]
    assert [e["details"]["scope"] for e in events] == [
        "openid user/Observation.rs",
        "openid user/Observation.cruds user/Specimen.rs",
    ]


async def test_role_validation(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    bad_name = await auth.http.put("/admin/roles/Bad_Name", json={"scope": "openid"}, headers=admin)
    assert_problem(bad_name, 400, "invalid_request")
    bad_scope = await auth.http.put(
        "/admin/roles/ok-role", json={"scope": "user/Patient.zz"}, headers=admin
    )
    assert bad_scope.status_code == 400
    assert bad_scope.headers["content-type"] == "application/problem+json"
    assert bad_scope.json()["code"] == "invalid_scope"
    missing = await auth.http.put("/admin/roles/ok-role", json={}, headers=admin)
    assert_problem(missing, 400, "invalid_request")


async def test_delete_roles(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    await auth.http.put("/admin/roles/temp-role", json={"scope": "openid"}, headers=admin)
    assert (await auth.http.delete("/admin/roles/temp-role", headers=admin)).status_code == 204
    assert_problem(
        await auth.http.delete("/admin/roles/temp-role", headers=admin), 404, "role_not_found"
    )
    assert_problem(
        await auth.http.delete("/admin/roles/clinician", headers=admin), 409, "role_builtin"
    )
    actions = [e["action"] for e in await auth.audit_events() if e["resource_id"] == "temp-role"]
    assert actions == ["auth.role_saved", "auth.role_deleted"]
