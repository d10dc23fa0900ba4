from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from medmesh.platform.audit import audit_database_for, list_records
from medmesh.platform.db import Database
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, Upgrade
from medmesh.platform.tokens import TokenVerifier
from medmesh.synthetic.config import SyntheticSettings
from medmesh.synthetic.main import create_app
from medmesh.synthetic.migrations import upgrade

ISSUER = "http://auth.test"
AUDIENCE = "medmesh-synthetic"
SCOPE = "synthetic:generate"
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
CLIENT_IP = "198.51.100.30"


def synthetic_settings_for(database_url: str, var_dir: Path, **overrides: Any) -> SyntheticSettings:
    """Test settings: quick polling and progress, a fixed replica name."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "var_dir": var_dir,
        "issuer": ISSUER,
        "job_poll_seconds": 0.2,
        "progress_interval_seconds": 0.2,
        "instance_name": "replica-under-test",
        "max_sync_size": 50,
    }
    values.update(overrides)
    return SyntheticSettings(**values)


@pytest.fixture
def database_upgrade() -> Upgrade:
    """Each test's database starts at synthetic's migrations' head (copied from a template)."""
    return upgrade


@pytest.fixture
def synthetic_settings(database_url: str, tmp_path: Path) -> SyntheticSettings:
    return synthetic_settings_for(database_url, tmp_path)


@dataclass
class SyntheticHarness:
    app: FastAPI
    http: httpx.AsyncClient
    tokens: TokenFactory
    settings: SyntheticSettings

    def headers(self, scope: str = SCOPE, **claims: Any) -> dict[str, str]:
        return self.tokens.headers(scope, audience=AUDIENCE, **claims)

    async def start_job(self, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/v1/jobs", json=body, headers=self.headers())
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        return job

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/jobs/{job_id}", headers=self.headers())
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def wait_for(
        self, job_id: str, done: Any = None, *, within: float = 90.0
    ) -> dict[str, Any]:
        """Poll the job until ``done(job)`` holds (default: it has finished)."""
        done = done or (lambda job: job["status"] in FINISHED)
        deadline = time.monotonic() + within
        while True:
            job = await self.job(job_id)
            if done(job):
                return job
            assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
            await asyncio.sleep(0.1)

    @property
    def output_dir(self) -> Path:
        return self.settings.effective_output_dir

    async def audit_actions(self) -> list[str]:
        database: Database = self.app.state.database
        audit_db = audit_database_for(database)
        try:
            return [r.action for r in await list_records(audit_db, limit=1000)]
        finally:
            await audit_db.dispose()


@contextlib.asynccontextmanager
async def run_synthetic(
    settings: SyntheticSettings,
    tokens: TokenFactory,
    templates: DatabaseTemplates | None = None,
) -> AsyncIterator[SyntheticHarness]:
    """Migrate (from ``templates`` when given) and start the app; an httpx client talks to it."""
    if templates is None:
        await upgrade(settings.effective_database_url)
    else:
        await templates.migrate(settings.effective_database_url, upgrade)
    app = create_app(settings)
    app.state.verifier = TokenVerifier(ISSUER, AUDIENCE, jwks=tokens.jwks())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://synthetic.test", timeout=60
        ) as http:
            yield SyntheticHarness(app, http, tokens, settings)


@pytest.fixture
async def synthetic(
    synthetic_settings: SyntheticSettings,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[SyntheticHarness]:
    async with run_synthetic(synthetic_settings, token_factory, database_templates) as harness:
        yield harness
