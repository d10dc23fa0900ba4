"""Signing-key rotation through the admin API."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from medmesh.auth.bootstrap import DEMO_SERVICE_CLIENT_ID
from medmesh.platform.tokens import SigningKey, TokenVerifier
from tests.auth.conftest import ISSUER, AuthFactory, AuthHarness, bearer, header_of


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


async def test_es256_key_ring_signs_and_publishes_ec_keys(auth_factory: AuthFactory) -> None:
    async with auth_factory(signing_alg="ES256") as auth:
        token = await auth.access_token(audience="medmesh-phi")
        jwks = (await auth.http.get("/.well-known/jwks.json")).json()
        metadata = (await auth.http.get("/.well-known/openid-configuration")).json()
        introspected = await auth.introspect(token)

    assert header_of(token)["alg"] == "ES256"
    (key,) = jwks["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")
    assert header_of(token)["kid"] == key["kid"]
    assert metadata["id_token_signing_alg_values_supported"] == ["ES256"]
    assert introspected["active"] is True
    # A resource server verifies it with the JWK Set alone; so does another JWT library.
    verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=jwks)
    assert (await verifier.verify(token)).client_id == DEMO_SERVICE_CLIENT_ID
    public = pyjwt.PyJWK.from_dict(key).key
    claims = pyjwt.decode(token, public, algorithms=["ES256"], audience="medmesh-phi")
    assert claims["iss"] == ISSUER


async def test_changing_the_algorithm_rotates_the_ring_at_start(auth_factory: AuthFactory) -> None:
    async with auth_factory() as before:
        rs_token = await before.access_token(audience="medmesh-phi")
        secrets = before.secrets
    async with auth_factory(signing_alg="ES256", known_secrets=secrets) as after:
        es_token = await after.access_token(audience="medmesh-phi")
        jwks = (await after.http.get("/.well-known/jwks.json")).json()
        listed = (await after.http.get("/admin/keys", headers=await after.admin_headers())).json()
        old_still_active = (await after.introspect(rs_token))["active"]

    assert (header_of(rs_token)["alg"], header_of(es_token)["alg"]) == ("RS256", "ES256")
    # The retired RSA key stays published until the tokens it signed have expired.
    assert {k["kty"] for k in jwks["keys"]} == {"RSA", "EC"}
    status = {k["kid"]: k["status"] for k in listed}
    assert status[header_of(rs_token)["kid"]] == "retired"
    assert status[header_of(es_token)["kid"]] == "active"
    assert old_still_active is True
    verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=jwks)
    assert (await verifier.verify(rs_token)).client_id == DEMO_SERVICE_CLIENT_ID
    assert (await verifier.verify(es_token)).client_id == DEMO_SERVICE_CLIENT_ID


@pytest.mark.parametrize(("alg", "kty", "crv"), [("ES384", "EC", "P-384"), ("RS384", "RSA", None)])
async def test_sha384_key_rings_sign_and_publish_their_algorithm(
    auth_factory: AuthFactory, monkeypatch: pytest.MonkeyPatch, alg: str, kty: str, crv: str | None
) -> None:
    # The RSA key pool of conftest hands out RS256 keys; this ring needs a key made for RS384.
    monkeypatch.setattr(
        "medmesh.auth.keys.service.SigningKey.generate_rsa",
        lambda kid=None, *, alg="RS256", **_: SigningKey(
            alg, kid, private_key=rsa.generate_private_key(65537, 2048)
        ),
    )
    async with auth_factory(signing_alg=alg) as auth:
        token = await auth.access_token(audience="medmesh-phi")
        jwks = (await auth.http.get("/.well-known/jwks.json")).json()
        introspected = await auth.introspect(token)
        await auth.http.post("/admin/keys/rotate", headers=await auth.admin_headers())
        rotated = await auth.access_token(audience="medmesh-phi")

    assert header_of(token)["alg"] == header_of(rotated)["alg"] == alg
    (key,) = jwks["keys"]
    assert (key["kty"], key.get("crv"), key["alg"]) == (kty, crv, alg)
    assert introspected["active"] is True
    verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=jwks)
    assert (await verifier.verify(token)).client_id == DEMO_SERVICE_CLIENT_ID
    public = pyjwt.PyJWK.from_dict(key).key
    claims = pyjwt.decode(token, public, algorithms=[alg], audience="medmesh-phi")
    assert claims["iss"] == ISSUER
