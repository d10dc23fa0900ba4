from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app
from medmesh.phi.migrations import upgrade
from medmesh.platform.crypto import KeyRing
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, Upgrade
from medmesh.platform.tokens import TokenVerifier

BASE = "http://phi.test"
AUDIENCE = "medmesh-phi"
BLIND_KEY = "bWVkbWVzaC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMmJ5dGVz"


@pytest.fixture
def database_upgrade() -> Upgrade:
    """Each test's database starts at phi's migrations' head (copied from a template)."""
    return upgrade


@pytest.fixture
def phi_settings(database_url: str, tmp_path: Path) -> PhiSettings:
    return PhiSettings(
        database_url=database_url,
        var_dir=tmp_path,
        issuer="http://auth.test",
        encryption_keys=KeyRing.generate().to_setting(),
        blind_index_key=BLIND_KEY,
    )


@dataclass
class PhiHarness:
    app: FastAPI
    http: httpx.AsyncClient
    tokens: TokenFactory
    settings: PhiSettings

    def headers(self, scope: str = "system/*.cruds", **claims: Any) -> dict[str, str]:
        return {
            **self.tokens.headers(scope, audience=AUDIENCE, **claims),
            "Content-Type": "application/fhir+json",
        }

    async def create(
        self, resource: dict[str, Any], scope: str = "system/*.cruds"
    ) -> dict[str, Any]:
        response = await self.http.post(
            f"/fhir/{resource['resourceType']}", json=resource, headers=self.headers(scope)
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def phi(
    phi_settings: PhiSettings, token_factory: TokenFactory, database_templates: DatabaseTemplates
) -> AsyncIterator[PhiHarness]:
    await database_templates.migrate(phi_settings.effective_database_url, upgrade)
    app = create_app(phi_settings)
    app.state.verifier = TokenVerifier("http://auth.test", AUDIENCE, jwks=token_factory.jwks())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield PhiHarness(app, http, token_factory, phi_settings)
