"""Readings past ``READING_RETENTION_DAYS`` are removed (on PostgreSQL whole months as
partitions, the rest row by row, their keys too), a run that removed anything is audited, and
ingest refuses readings older than the retention keeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from medmesh.devices.readings.retention import BATCH, ReadingRetention
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import (
    INGEST,
    READ,
    DevicesHarness,
    devices_settings_for,
    run_devices,
)

NOW = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)
#: Stored before the run; with 365 days kept the horizon is 2025-02-20 12:00 UTC.
TAKEN = {
    "epoch": "1970-01-01T00:00:00Z",
    "jan": "2025-01-15T08:00:00Z",
    "feb-before": "2025-02-20T11:59:59Z",
    "feb-after": "2025-02-20T12:00:00Z",
    "mar": "2025-03-05T08:00:00Z",
    "jan-next": "2026-01-01T00:00:00Z",
}
PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'readings'::regclass ORDER BY c.relname"
)


def _entry(reading_id: str, timestamp: str) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "timestamp": timestamp,
        "metric": "heart_rate",
        "value": 72,
        "unit": "/min",
    }


async def _send(devices: DevicesHarness, device_id: str, entries: list[dict[str, Any]]) -> Any:
    return await devices.ok(
        "POST",
        f"/v1/devices/{device_id}/readings",
        json={"readings": entries},
        headers=devices.headers(INGEST),
    )


async def _kept(devices: DevicesHarness, device_id: str) -> list[str]:
    body = await devices.ok(
        "GET",
        f"/v1/devices/{device_id}/readings",
        params={"start": "1960-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"},
        headers=devices.headers(READ),
    )
    return [reading["reading_id"] for reading in body["data"]]


async def test_readings_past_the_retention_are_removed(devices: DevicesHarness) -> None:
    first = (await devices.assigned("Patient/p1"))["id"]
    second = (await devices.assigned("Patient/p2"))["id"]
    for device_id in (first, second):
        sent = await _send(devices, device_id, [_entry(n, ts) for n, ts in TAKEN.items()])
        assert sent["stored"] == len(TAKEN)
    postgresql = not devices.database.is_sqlite
    if postgresql:
        assert "readings_2025_01" in [n for (n,) in await devices.rows(PARTITIONS)]
    retention = ReadingRetention(devices.database, devices.app.state.devices.intake.auditor, 365)

    expired = await retention.run(NOW)

    assert expired.horizon == datetime(2025, 2, 20, 12, 0, tzinfo=UTC)
    assert expired.readings == 2 * 3
    assert expired.partitions == (["readings_2025_01"] if postgresql else [])
    for device_id in (first, second):
        assert await _kept(devices, device_id) == ["feb-after", "mar", "jan-next"]
    if postgresql:
        partitions = [name for (name,) in await devices.rows(PARTITIONS)]
        assert "readings_2025_01" not in partitions
        assert {"readings_before_2000", "readings_2025_02", "readings_2025_03"} <= set(partitions)
        keys = await devices.rows("SELECT reading_id FROM reading_keys ORDER BY reading_id")
        kept = ["feb-after", "feb-after", "jan-next", "jan-next", "mar", "mar"]
        assert keys == [(reading_id,) for reading_id in kept]
    [record] = [r for r in await devices.audit() if r[0] == "devices.readings.expire"]
    assert record == ("devices.readings.expire", None, [])
    assert (await retention.run(NOW)).readings == 0
    assert len([r for r in await devices.audit() if r[0] == "devices.readings.expire"]) == 1


async def test_a_run_removes_more_than_one_batch(devices: DevicesHarness, monkeypatch: Any) -> None:
    monkeypatch.setattr("medmesh.devices.readings.retention.BATCH", 3)
    device_id = (await devices.assigned("Patient/p1"))["id"]
    old = datetime(2025, 1, 1, tzinfo=UTC)
    await _send(
        devices,
        device_id,
        [_entry(f"r{n}", (old + timedelta(minutes=n)).isoformat()) for n in range(10)]
        + [_entry("new", "2026-02-01T00:00:00Z")],
    )

    expired = await ReadingRetention(
        devices.database, devices.app.state.devices.intake.auditor, 30
    ).run(NOW)

    assert expired.readings == 10
    assert await _kept(devices, device_id) == ["new"]
    assert BATCH == 5000


async def test_no_retention_keeps_every_reading(devices: DevicesHarness) -> None:
    device_id = (await devices.assigned("Patient/p1"))["id"]
    await _send(devices, device_id, [_entry("epoch", TAKEN["epoch"])])

    expired = await ReadingRetention(
        devices.database, devices.app.state.devices.intake.auditor, 0
    ).run(NOW)

    assert (expired.readings, expired.partitions) == (0, [])
    assert await _kept(devices, device_id) == ["epoch"]


async def test_ingest_refuses_readings_older_than_the_retention_and_the_service_removes_them(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    now = datetime.now(UTC)
    old = (now - timedelta(days=40)).isoformat()
    recent = (now - timedelta(days=1)).isoformat()
    keep_all = devices_settings_for(database_url, tmp_path)
    async with run_devices(keep_all, token_factory, database_templates) as devices:
        device_id = (await devices.assigned("Patient/p1"))["id"]
        await _send(devices, device_id, [_entry("stored-before", old)])

    keep_30_days = devices_settings_for(
        database_url, tmp_path, reading_retention_days=30, retention_check_seconds=0.05
    )
    async with run_devices(keep_30_days, token_factory) as devices:
        answer = await _send(devices, device_id, [_entry("old", old), _entry("recent", recent)])
        for _ in range(200):  # the first run starts with the service
            if await _kept(devices, device_id) == ["recent"]:
                break
            await asyncio.sleep(0.05)

        assert await _kept(devices, device_id) == ["recent"]
    assert (answer["stored"], answer["rejected"]) == (1, 1)
    assert answer["results"][0] == {
        "index": 0,
        "device_id": None,
        "reading_id": "old",
        "status": "rejected",
        "code": "timestamp_expired",
        "message": "timestamp: older than the readings this service keeps",
    }
    assert answer["results"][1]["status"] == "stored"
