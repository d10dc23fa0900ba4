"""A real phi-service served over HTTP on a local port, on a database of its own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app as create_phi
from medmesh.phi.migrations import upgrade as upgrade_phi
from medmesh.platform.crypto import KeyRing
from medmesh.platform.service_client import ServiceClient
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, serve_app
from medmesh.platform.tokens import TokenVerifier

ISSUER = "http://auth.test"
BLIND_KEY = "bWVkbWVzaC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMmJ5dGVz"
PHI_SCOPE = "system/*.cruds"


@dataclass
class LivePhi:
    url: str
    tokens: TokenFactory

    def headers(self) -> dict[str, str]:
        return self.tokens.headers(PHI_SCOPE, audience="medmesh-phi")

    def client(self) -> ServiceClient:
        """The client the devices service posts Bundles with (a system token for phi)."""
        return ServiceClient(self.url, headers=self.headers(), retries=0)

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
            response = await http.request(method, path, headers=self.headers(), **kw)
        assert response.status_code < 300, response.text
        return response.json()

    async def patient(self) -> str:
        """A new Patient; its ``Patient/<id>``."""
        created = await self.request(
            "POST",
            "/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Ann"]}]},
        )
        return f"Patient/{created['id']}"

    async def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        bundle = await self.request(
            "GET", f"/fhir/{resource_type}", params={"_count": "500", **params}
        )
        return [entry["resource"] for entry in bundle.get("entry", [])]


@contextlib.asynccontextmanager
async def live_phi(
    folder: Path, tokens: TokenFactory, templates: DatabaseTemplates
) -> AsyncIterator[LivePhi]:
    """phi-service on a SQLite file in ``folder``, trusting ``tokens``."""
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before serving
    settings = PhiSettings(
        database_url=f"sqlite+medmesh:///{folder / 'phi.db'}",
        var_dir=folder,
        issuer=ISSUER,
        encryption_keys=KeyRing.generate().to_setting(),
        blind_index_key=BLIND_KEY,
    )
    await templates.migrate(settings.effective_database_url, upgrade_phi)
    app = create_phi(settings)
    app.state.verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=tokens.jwks())
    async with app.router.lifespan_context(app), serve_app(app) as url:
        yield LivePhi(url, tokens)
