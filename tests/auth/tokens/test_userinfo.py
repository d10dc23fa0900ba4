"""OIDC /oauth/userinfo."""

from __future__ import annotations

from tests.auth.conftest import AuthHarness, bearer, claims_of


async def test_userinfo_with_an_openid_token(auth: AuthHarness) -> None:
    user = await auth.create_user("pat.jones", roles=["patient"], patient_id="p-9")
    token = (await auth.login("pat.jones", "a long enough password")).json()["access_token"]
    for method in ("GET", "POST"):
        response = await auth.http.request(method, "/oauth/userinfo", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "sub": user["id"],
            "preferred_username": "pat.jones",
            "roles": ["patient"],
            "patient": "p-9",
            "fhirUser": "Patient/p-9",
        }


async def test_userinfo_without_openid_is_403(auth: AuthHarness) -> None:
    token = (await auth.login(scope="audit:read")).json()["access_token"]
    assert "openid" not in claims_of(token)["scope"].split()
    response = await auth.http.get("/oauth/userinfo", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


async def test_userinfo_with_a_service_token_is_404(auth: AuthHarness) -> None:
    client = await auth.create_client(scope="openid system/*.rs")
    token = await auth.access_token(client["client_id"], scope="openid")
    response = await auth.http.get("/oauth/userinfo", headers=bearer(token))
    assert response.status_code == 404
    assert response.json()["error"] == "no_user"


async def test_userinfo_without_a_token_is_401(auth: AuthHarness) -> None:
    response = await auth.http.get("/oauth/userinfo")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    garbage = await auth.http.get("/oauth/userinfo", headers=bearer("not-a-jwt"))
    assert garbage.status_code == 401
    assert garbage.json()["error"] == "invalid_token"


async def test_userinfo_refuses_the_token_of_a_deleted_user(auth: AuthHarness) -> None:
    user = await auth.create_user("gone.soon", roles=["auditor"])
    token = (await auth.login("gone.soon", "a long enough password")).json()["access_token"]
    deleted = await auth.http.delete(
        f"/admin/users/{user['id']}", headers=await auth.admin_headers()
    )
    assert deleted.status_code == 204
    response = await auth.http.get("/oauth/userinfo", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "token has been revoked",
    }
