"""Signing-key rotation through the admin API."""

from __future__ import annotations

from medmesh.auth.bootstrap import DEMO_SERVICE_CLIENT_ID
from medmesh.platform.auth import TokenVerifier
from tests.auth.conftest import ISSUER, AuthHarness, bearer, header_of


async def test_rotation_keeps_old_keys_published(auth: AuthHarness) -> None:
    old_token = await auth.access_token()
    old_kid = header_of(old_token)["kid"]
    admin = await auth.admin_headers()

    response = await auth.http.post("/admin/keys/rotate", headers=admin)
    assert response.status_code == 201, response.text
    new_kid = response.json()["kid"]
    assert new_kid != old_kid
    assert response.json()["status"] == "active"

    jwks = (await auth.http.get("/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}

    new_token = await auth.access_token()
    assert header_of(new_token)["kid"] == new_kid
    verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=jwks)
    assert (await verifier.verify(old_token)).client_id == DEMO_SERVICE_CLIENT_ID
    assert (await verifier.verify(new_token)).client_id == DEMO_SERVICE_CLIENT_ID
    assert (await auth.introspect(old_token))["active"] is True
    # Tokens signed before the rotation still work on the admin API.
    assert (await auth.http.get("/admin/users", headers=admin)).status_code == 200

    listed = (await auth.http.get("/admin/keys", headers=admin)).json()
    by_kid = {k["kid"]: k for k in listed}
    assert by_kid[new_kid]["status"] == "active"
    assert by_kid[old_kid]["status"] == "retired"
    assert by_kid[old_kid]["publish_until"] is not None

    events = await auth.audit_events(action="auth.key_rotated")
    assert events[-1]["resource_id"] == new_kid
    assert events[-1]["resource_type"] == "SigningKey"


async def test_rotation_requires_admin(auth: AuthHarness) -> None:
    service = await auth.access_token()
    assert (await auth.http.post("/admin/keys/rotate", headers=bearer(service))).status_code == 403
    assert (await auth.http.post("/admin/keys/rotate")).status_code == 401
    assert (await auth.http.get("/admin/keys", headers=bearer(service))).status_code == 403
