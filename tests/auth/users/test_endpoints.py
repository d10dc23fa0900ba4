"""Admin API of users, and the role-to-scope mapping their tokens follow."""

from __future__ import annotations

from tests.auth.conftest import AuthHarness, bearer, claims_of

PASSWORD = "a long enough password"


def assert_problem(response: object, status: int, code: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == code
    assert body["status"] == status


async def test_user_crud(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    created = await auth.http.post(
        "/admin/users",
        json={"username": "Dr.Who", "password": PASSWORD, "roles": ["clinician"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["username"] == "dr.who"
    assert user["roles"] == ["clinician"]
    assert "password" not in created.text

    fetched = await auth.http.get(f"/admin/users/{user['id']}", headers=admin)
    assert fetched.json()["username"] == "dr.who"

    listed = (await auth.http.get("/admin/users", params={"limit": 1}, headers=admin)).json()
    assert [u["username"] for u in listed["data"]] == ["admin"]
    assert listed["next_after"] == "admin"
    rest = (await auth.http.get("/admin/users", params={"after": "admin"}, headers=admin)).json()
    assert [u["username"] for u in rest["data"]] == ["dr.who"]
    assert rest["next_after"] is None

    patched = await auth.http.patch(
        f"/admin/users/{user['id']}", json={"roles": ["auditor"]}, headers=admin
    )
    assert patched.json()["roles"] == ["auditor"]

    deleted = await auth.http.delete(f"/admin/users/{user['id']}", headers=admin)
    assert deleted.status_code == 204
    missing = await auth.http.get(f"/admin/users/{user['id']}", headers=admin)
    assert_problem(missing, 404, "user_not_found")

    actions = [e["action"] for e in await auth.audit_events(resource_type="User")]
    events = [e for e in await auth.audit_events() if e["resource_id"] == user["id"]]
    assert [e["action"] for e in events] == [
        "auth.user_created",
        "auth.user_updated",
        "auth.user_deleted",
    ]
    assert all(e["actor"] == claims_of(admin["Authorization"][7:])["sub"] for e in events)
    assert events[1]["details"] == {"fields": ["roles"]}
    assert actions is not None


async def test_admin_api_needs_a_token(auth: AuthHarness) -> None:
    response = await auth.http.get("/admin/users")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_admin_api_needs_auth_admin(auth: AuthHarness) -> None:
    service = bearer(await auth.access_token())
    for method, path in [
        ("GET", "/admin/users"),
        ("POST", "/admin/users"),
        ("GET", "/admin/clients"),
        ("PUT", "/admin/roles/x-role"),
        ("GET", "/admin/roles"),
    ]:
        response = await auth.http.request(method, path, headers=service, json={"scope": ""})
        assert_problem(response, 403, "insufficient_scope")
        assert 'scope="auth:admin"' in response.headers["www-authenticate"]
    assert await auth.count("users") == 1


async def test_auditor_cannot_administer(auth: AuthHarness) -> None:
    await auth.create_user("aud.itor", roles=["auditor"])
    token = (await auth.login("aud.itor", PASSWORD)).json()["access_token"]
    assert (await auth.http.get("/admin/users", headers=bearer(token))).status_code == 403
    audit = await auth.http.get("/admin/audit-events", headers=bearer(token))
    assert audit.status_code == 200


USER_CASES: list[tuple[dict[str, object], str]] = [
    ({"username": "ab", "password": PASSWORD}, "invalid_request"),
    ({"username": "ok.name", "password": "short"}, "invalid_request"),
    ({"username": "ok.name", "password": "tab\there is control"}, "invalid_request"),
    ({"username": "ok.name", "password": PASSWORD, "extra": 1}, "invalid_request"),
    ({"username": "' OR 1=1 --", "password": PASSWORD}, "invalid_request"),
    ({"username": "bad\u202ename", "password": PASSWORD}, "invalid_request"),
    ({"username": "ok.name", "password": PASSWORD, "roles": ["wizard"]}, "unknown_role"),
    (
        {"username": "ok.name", "password": PASSWORD, "roles": ["patient"]},
        "patient_id_required",
    ),
    ({"username": "admin", "password": PASSWORD}, "user_exists"),
    ({"username": "ok.name", "password": PASSWORD, "fhir_user": "Evil/1"}, "invalid_request"),
]


async def test_user_validation(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    before = await auth.counts()
    for payload, code in USER_CASES:
        response = await auth.http.post("/admin/users", json=payload, headers=admin)
        assert_problem(response, 409 if code == "user_exists" else 400, code)
        assert "correct horse" not in response.text
    assert await auth.counts() == before


async def test_malformed_json_body_is_400(auth: AuthHarness) -> None:
    headers = {**(await auth.admin_headers()), "Content-Type": "application/json"}
    response = await auth.http.post("/admin/users", content=b"{not json", headers=headers)
    assert_problem(response, 400, "invalid_request")


async def test_clinician_gets_user_scopes(auth: AuthHarness) -> None:
    await auth.create_user("clin.ician", roles=["clinician"])
    body = (await auth.login("clin.ician", PASSWORD)).json()
    scopes = claims_of(body["access_token"])["scope"].split()
    assert "user/*.cruds" in scopes
    assert "auth:admin" not in scopes
    assert "fhirUser" in scopes


async def test_patient_binding_on_update(auth: AuthHarness) -> None:
    user = await auth.create_user("soon.patient", roles=["auditor"])
    admin = await auth.admin_headers()
    response = await auth.http.patch(
        f"/admin/users/{user['id']}", json={"roles": ["patient"]}, headers=admin
    )
    assert_problem(response, 400, "patient_id_required")
    fixed = await auth.http.patch(
        f"/admin/users/{user['id']}",
        json={"roles": ["patient"], "patient_id": "p-1"},
        headers=admin,
    )
    assert fixed.status_code == 200
    assert fixed.json()["patient_id"] == "p-1"


async def test_password_change_revokes_sessions(auth: AuthHarness) -> None:
    user = await auth.create_user("change.me", roles=["auditor"])
    session = (await auth.login("change.me", PASSWORD)).json()
    response = await auth.http.patch(
        f"/admin/users/{user['id']}",
        json={"password": "another long password"},
        headers=await auth.admin_headers(),
    )
    assert response.status_code == 200
    assert (await auth.refresh(session["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await auth.login("change.me", PASSWORD)).status_code == 400
    assert (await auth.login("change.me", "another long password")).status_code == 200


async def test_unknown_user_ids(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    for path in ("/admin/users/nope", "/admin/users/%27%20OR%201%3D1", "/admin/users/" + "x" * 300):
        assert_problem(await auth.http.get(path, headers=admin), 404, "user_not_found")
    response = await auth.http.post("/admin/users/nope/unlock", headers=admin)
    assert_problem(response, 404, "user_not_found")
