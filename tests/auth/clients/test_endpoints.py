"""Admin API of OAuth clients."""

from __future__ import annotations

from medmesh.auth.bootstrap import DEMO_SERVICE_CLIENT_ID
from tests.auth.conftest import AuthHarness, basic_header, bearer
from tests.auth.users.test_endpoints import assert_problem


async def test_client_crud_and_secret_rotation(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    created = await auth.http.post(
        "/admin/clients",
        json={"client_id": "lab-system", "name": "Lab", "scope": "system/Observation.cruds"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["client_secret"]
    assert secret.startswith("mmcs_")
    assert len(secret) > 40
    assert body["grant_types"] == ["client_credentials"]
    assert body["scope"] == "system/Observation.cruds"
    async with auth.database.engine.connect() as conn:
        from sqlalchemy import text

        stored = (
            await conn.execute(
                text("SELECT secret_hash FROM clients WHERE client_id = 'lab-system'")
            )
        ).scalar_one()
    assert secret not in stored

    token = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_header("lab-system", secret),
    )
    assert token.status_code == 200

    fetched = (await auth.http.get("/admin/clients/lab-system", headers=admin)).json()
    assert "client_secret" not in fetched
    assert fetched["name"] == "Lab"
    listed = (await auth.http.get("/admin/clients", headers=admin)).json()
    assert "lab-system" in [c["client_id"] for c in listed["data"]]

    rotated = await auth.http.post("/admin/clients/lab-system/secret", headers=admin)
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    old = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_header("lab-system", secret),
    )
    assert old.status_code == 401
    new = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_header("lab-system", new_secret),
    )
    assert new.status_code == 200

    patched = await auth.http.patch(
        "/admin/clients/lab-system", json={"scope": "system/Observation.rs"}, headers=admin
    )
    assert patched.json()["scope"] == "system/Observation.rs"
    assert (await auth.http.delete("/admin/clients/lab-system", headers=admin)).status_code == 204
    assert_problem(
        await auth.http.get("/admin/clients/lab-system", headers=admin), 404, "client_not_found"
    )

    events = [e for e in await auth.audit_events() if e["resource_id"] == "lab-system"]
    assert [e["action"] for e in events] == [
        "auth.client_created",
        "auth.client_secret_rotated",
        "auth.client_updated",
        "auth.client_deleted",
    ]
    assert all(secret not in str(e) and new_secret not in str(e) for e in events)


async def test_generated_client_id(auth: AuthHarness) -> None:
    client = await auth.create_client(scope="system/*.rs")
    assert client["client_id"].startswith("mm_")


CLIENT_CASES: list[tuple[dict[str, object], int, str]] = [
    ({"client_id": "x"}, 400, "invalid_request"),
    ({"client_id": "bad id!"}, 400, "invalid_request"),
    ({"grant_types": ["implicit"]}, 400, "invalid_request"),
    ({"grant_types": []}, 400, "invalid_request"),
    ({"scope": "user/Patient.zz"}, 400, "invalid_scope"),
    ({"scope": "two  spaces"}, 400, "invalid_request"),
    ({"access_token_ttl_seconds": 10}, 400, "invalid_request"),
    ({"client_id": DEMO_SERVICE_CLIENT_ID}, 409, "client_exists"),
    ({"unknown": True}, 400, "invalid_request"),
]


async def test_client_validation(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    before = await auth.counts()
    for payload, status, code in CLIENT_CASES:
        response = await auth.http.post("/admin/clients", json=payload, headers=admin)
        assert response.status_code == status, (payload, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
    assert await auth.counts() == before


async def test_client_admin_requires_auth_admin(auth: AuthHarness) -> None:
    service = bearer(await auth.access_token())
    assert (await auth.http.post("/admin/clients", json={}, headers=service)).status_code == 403
    assert (await auth.http.delete(f"/admin/clients/{DEMO_SERVICE_CLIENT_ID}")).status_code == 401
    assert (await auth.token()).status_code == 200


NOT_NULL = ("name", "grant_types", "scope", "roles", "audiences", "disabled")


async def test_patch_with_null_is_a_400_except_for_the_token_lifetime(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    await auth.create_client(
        client_id="lab-system",
        name="Lab",
        scope="system/Observation.rs",
        access_token_ttl_seconds=600,
    )
    before = (await auth.http.get("/admin/clients/lab-system", headers=admin)).json()
    for field in NOT_NULL:
        response = await auth.http.patch(
            "/admin/clients/lab-system", json={field: None}, headers=admin
        )
        assert response.status_code == 400, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "code": "invalid_request",
            "detail": f"{field}: Value error, may not be null (leave the field out to keep its value)",
        }
    assert (await auth.http.get("/admin/clients/lab-system", headers=admin)).json() == before

    # null lifetime: back to the server's default (900 s in these settings)
    reset = await auth.http.patch(
        "/admin/clients/lab-system", json={"access_token_ttl_seconds": None}, headers=admin
    )
    assert reset.status_code == 200, reset.text
    assert reset.json()["access_token_ttl_seconds"] is None
    issued = await auth.token("lab-system")
    assert issued.json()["expires_in"] == auth.settings.access_token_ttl_seconds
