from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from medmesh.devices.config import DevicesSettings
from medmesh.devices.main import create_app
from medmesh.devices.migrations import upgrade
from medmesh.platform.audit import audit_database_for, list_records
from medmesh.platform.db import Database
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, Upgrade
from medmesh.platform.tokens import TokenVerifier

ISSUER = "http://auth.test"
AUDIENCE = "medmesh-devices"
CLIENT_IP = "198.51.100.50"
READ, WRITE, INGEST = "devices:read", "devices:write", "devices:ingest"


def devices_settings_for(database_url: str, var_dir: Path, **overrides: Any) -> DevicesSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "var_dir": var_dir,
        "issuer": ISSUER,
        # Nothing listens there: a test that delivers to phi serves one and says so.
        "phi_url": "http://127.0.0.1:9",
        # Each test makes the rules it is about; test_alert_defaults.py starts with the defaults.
        "default_alert_rules": False,
    }
    values.update(overrides)
    return DevicesSettings(**values)


@pytest.fixture
def database_upgrade() -> Upgrade:
    """Each test's database starts at the devices migrations' head (copied from a template)."""
    return upgrade


@pytest.fixture
def devices_settings(database_url: str, tmp_path: Path) -> DevicesSettings:
    return devices_settings_for(database_url, tmp_path)


@dataclass
class DevicesHarness:
    app: FastAPI
    http: httpx.AsyncClient
    tokens: TokenFactory
    settings: DevicesSettings

    def headers(self, scope: str = WRITE, **claims: Any) -> dict[str, str]:
        return self.tokens.headers(scope, audience=AUDIENCE, **claims)

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        kw.setdefault("headers", self.headers())
        response = await self.http.request(method, path, **kw)
        assert response.status_code == status, response.text
        return response.json()

    async def register(self, **fields: Any) -> dict[str, Any]:
        """A new device (with ``credential.key``)."""
        body = {"manufacturer": "Acme", "model": "Pulse 2", "serial_number": "SN-1", **fields}
        device: dict[str, Any] = await self.ok("POST", "/v1/devices", 201, json=body)
        return device

    async def assigned(self, patient: str = "Patient/p1", **assignment: Any) -> dict[str, Any]:
        """A new device assigned to ``patient`` from long ago."""
        device = await self.register()
        body = {"patient": patient, "start": "2020-01-01T00:00:00Z", **assignment}
        await self.ok("POST", f"/v1/devices/{device['id']}/assignments", 201, json=body)
        return device

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    async def audit(self) -> list[tuple[str, str | None, list[str]]]:
        """(action, device id, patient ids) of every audit record, oldest first."""
        audit_db = audit_database_for(self.database)
        try:
            records = await list_records(audit_db, limit=1000)
        finally:
            if audit_db is not self.database:
                await audit_db.dispose()
        return [(r.action, r.resource_id, list(r.patient_ids)) for r in records]

    async def rows(self, sql: str, **bind: Any) -> list[tuple[Any, ...]]:
        async with self.database.engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), bind)]


@contextlib.asynccontextmanager
async def run_devices(
    settings: DevicesSettings, tokens: TokenFactory, templates: DatabaseTemplates | None = None
) -> AsyncIterator[DevicesHarness]:
    if templates is None:
        await upgrade(settings.effective_database_url)
    else:
        await templates.migrate(settings.effective_database_url, upgrade)
    app = create_app(settings)
    app.state.verifier = TokenVerifier(ISSUER, AUDIENCE, jwks=tokens.jwks())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://devices.test", timeout=60
        ) as http:
            yield DevicesHarness(app, http, tokens, settings)


@pytest.fixture
async def devices(
    devices_settings: DevicesSettings,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[DevicesHarness]:
    async with run_devices(devices_settings, token_factory, database_templates) as harness:
        yield harness


@pytest.fixture
async def mqtt_devices(
    mqtt_url: str,
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[DevicesHarness]:
    run = uuid.uuid4().hex[:12]
    settings = devices_settings_for(
        database_url,
        tmp_path,
        mqtt_url=mqtt_url,
        mqtt_topic=f"test-{run}/devices/+/readings",
        mqtt_group=f"group-{run}",
        mqtt_client_id=f"devices-{run}",
        mqtt_reconnect_seconds=0.1,
    )
    async with run_devices(settings, token_factory, database_templates) as harness:
        mqtt = harness.app.state.devices.mqtt
        await asyncio.wait_for(mqtt.subscribed.wait(), 60)
        yield harness
