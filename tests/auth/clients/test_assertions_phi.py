"""A backend's assertion-issued token is honoured by phi-service (both apps in-process)."""

from __future__ import annotations

from pathlib import Path

import httpx

from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app
from medmesh.phi.migrations import upgrade
from medmesh.platform.crypto import KeyRing
from medmesh.platform.tokens import TokenVerifier
from tests.auth.clients.test_assertions import BackendKey, register, token_with
from tests.auth.conftest import ISSUER, AuthHarness, bearer

BLIND_KEY = "bWVkbWVzaC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMmJ5dGVz"


async def test_phi_accepts_the_backend_token_within_its_scopes(
    auth: AuthHarness, tmp_path: Path
) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    issued = await token_with(auth, key.assertion(client_id), scope="system/Patient.rs")
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    url = f"sqlite+medmesh:///{tmp_path / 'phi.db'}"
    await upgrade(url)
    settings = PhiSettings(
        database_url=url,
        var_dir=tmp_path / "phi",
        issuer=ISSUER,
        encryption_keys=KeyRing.generate().to_setting(),
        blind_index_key=BLIND_KEY,
    )
    phi = create_app(settings)
    jwks = (await auth.http.get("/.well-known/jwks.json")).json()
    phi.state.verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=jwks)
    async with phi.router.lifespan_context(phi):
        transport = httpx.ASGITransport(app=phi, client=("198.51.100.30", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://phi.test") as http:
            search = await http.get("/fhir/Patient", headers=bearer(token))
            assert search.status_code == 200, search.text
            assert search.json()["resourceType"] == "Bundle"
            write = await http.post(
                "/fhir/Patient",
                json={"resourceType": "Patient", "name": [{"family": "Ngata"}]},
                headers={**bearer(token), "Content-Type": "application/fhir+json"},
            )
            assert write.status_code == 403, write.text
