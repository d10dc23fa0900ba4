"""Back-pressure: past MAX_PENDING_READINGS ingest answers 503 with Retry-After and stores
nothing of that request; what was admitted is stored."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text

from medmesh.platform.db import Database
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import INGEST, devices_settings_for, run_devices


@contextlib.asynccontextmanager
async def writes_held(database: Database) -> AsyncIterator[None]:
    """Readings cannot be written while the block runs (the SQLite writer's lock, or a
    PostgreSQL table lock)."""
    if database.is_sqlite:
        async with database.write_lock:
            yield
        return
    async with database.engine.connect() as conn, conn.begin():
        await conn.execute(text("LOCK TABLE readings IN EXCLUSIVE MODE"))
        yield


async def test_ingest_full_answers_503_with_retry_after(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    settings = devices_settings_for(
        database_url, tmp_path, max_pending_readings=2, retry_after_seconds=3
    )
    async with run_devices(settings, token_factory, database_templates) as devices:
        device = await devices.assigned()
        path = f"/v1/devices/{device['id']}/readings"
        headers = devices.headers(INGEST)

        def batch(*ids: str) -> dict[str, object]:
            return {
                "readings": [
                    {
                        "reading_id": i,
                        "timestamp": "2026-03-01T08:00:00Z",
                        "metric": "spo2",
                        "value": 97,
                        "unit": "%",
                    }
                    for i in ids
                ]
            }

        async with writes_held(devices.database):
            first = asyncio.create_task(
                devices.http.post(path, json=batch("a", "b"), headers=headers)
            )
            deadline = time.monotonic() + 30
            while (
                "medmesh_devices_ingest_pending_readings 2.0"
                not in (await devices.http.get("/metrics")).text
            ):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            refused = await devices.http.post(path, json=batch("c"), headers=headers)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "ingest_full"
        admitted = await first
        assert admitted.status_code == 200
        assert admitted.json()["stored"] == 2
        assert await devices.rows("SELECT reading_id FROM readings ORDER BY reading_id") == [
            ("a",),
            ("b",),
        ]
        metrics = (await devices.http.get("/metrics")).text
        assert 'medmesh_devices_ingest_full_total{transport="http"} 1.0' in metrics
        assert "medmesh_devices_ingest_pending_readings 0.0" in metrics
        again = await devices.http.post(path, json=batch("c"), headers=headers)
        assert again.json()["stored"] == 1
