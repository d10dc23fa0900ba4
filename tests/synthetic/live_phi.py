"""A real phi-service app served over HTTP on a local port, for the loader and ``synth --load``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app as create_phi
from medmesh.phi.migrations import upgrade as upgrade_phi
from medmesh.platform.crypto import KeyRing
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, serve_app
from medmesh.platform.tokens import TokenVerifier

ISSUER = "http://auth.test"
BLIND_KEY = "bWVkbWVzaC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMmJ5dGVz"


@pytest.fixture
async def served_phi_url(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[str]:
    """phi-service on this test's database, trusting ``token_factory``'s tokens; its base URL."""
    settings = PhiSettings(
        database_url=database_url,
        var_dir=tmp_path,
        issuer=ISSUER,
        encryption_keys=KeyRing.generate().to_setting(),
        blind_index_key=BLIND_KEY,
    )
    await database_templates.migrate(settings.effective_database_url, upgrade_phi)
    app = create_phi(settings)
    app.state.verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=token_factory.jwks())
    async with app.router.lifespan_context(app), serve_app(app) as url:
        yield url
