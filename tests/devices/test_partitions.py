"""Readings on PostgreSQL are partitioned by month of their time: each lands in its month's
partition (made by the first batch that needs it, once however many batches need it at once),
a repeated reading is found through reading_keys whatever time it carries, and a window query
reads only the partitions of its months, through the index. The duplicate rule holds on SQLite
as well."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ClauseElement, Executable, Select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from medmesh.devices.ingest.repository import READING_COLUMNS, ReadingRepository
from medmesh.devices.partitions import ReadingPartitions
from medmesh.devices.readings.repository import aggregate_statement, raw_statement
from medmesh.devices.readings.window import Window
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import (
    INGEST,
    READ,
    DevicesHarness,
    devices_settings_for,
    run_devices,
)

PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'readings'::regclass ORDER BY c.relname"
)


@pytest.fixture
async def pg_devices(
    postgres_database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[DevicesHarness]:
    """A devices service on PostgreSQL only (the partitions are PostgreSQL's)."""
    settings = devices_settings_for(postgres_database_url, tmp_path)
    async with run_devices(settings, token_factory, database_templates) as harness:
        yield harness


def entry(reading_id: str, timestamp: str, value: float = 72) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "timestamp": timestamp,
        "metric": "heart_rate",
        "value": value,
        "unit": "/min",
    }


async def send(
    devices: DevicesHarness, device: dict[str, Any], entries: list[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = await devices.ok(
        "POST",
        f"/v1/devices/{device['id']}/readings",
        json={"readings": entries},
        headers=devices.headers(INGEST),
    )
    return body


async def listed(devices: DevicesHarness, device: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(reading id, timestamp, value) of the device's readings in 2026's first four months."""
    body = await devices.ok(
        "GET",
        f"/v1/devices/{device['id']}/readings",
        params={"start": "2026-01-01T00:00:00Z", "end": "2026-05-01T00:00:00Z"},
        headers=devices.headers(READ),
    )
    return [(r["reading_id"], r["timestamp"], r["value"]) for r in body["data"]]


async def test_a_reading_sent_again_with_another_time_is_a_duplicate(
    devices: DevicesHarness,
) -> None:
    device = await devices.assigned("Patient/p1")
    first = await send(
        devices,
        device,
        [entry("r1", "2026-01-10T08:00:00Z"), entry("r2", "2026-02-10T08:00:00Z")],
    )
    again = await send(
        devices,
        device,
        [entry("r1", "2026-03-10T08:00:00Z", value=99), entry("r3", "2026-03-11T08:00:00Z")],
    )

    assert (first["stored"], first["duplicates"]) == (2, 0)
    assert (again["stored"], again["duplicates"]) == (1, 1)
    assert [(r["reading_id"], r["status"]) for r in again["results"]] == [
        ("r1", "duplicate"),
        ("r3", "stored"),
    ]
    assert await listed(devices, device) == [
        ("r1", "2026-01-10T08:00:00Z", 72.0),
        ("r2", "2026-02-10T08:00:00Z", 72.0),
        ("r3", "2026-03-11T08:00:00Z", 72.0),
    ]
    if not devices.database.is_sqlite:
        keys = await devices.rows("SELECT reading_id FROM reading_keys ORDER BY reading_id")
        assert keys == [("r1",), ("r2",), ("r3",)]


def _row(device: str, reading_id: str, ts: datetime, **extra: Any) -> tuple[Any, ...]:
    """A row in READING_COLUMNS order (heart rate unless ``extra`` says otherwise)."""
    values: dict[str, Any] = {
        "metric": "heart_rate",
        "value": 72.0,
        "components": None,
        "unit": "/min",
        "patient_ref": "Patient/p1",
        **extra,
    }
    received = datetime(2026, 4, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    return (
        device,
        reading_id,
        ts,
        values["metric"],
        values["value"],
        values["components"],
        values["unit"],
        values["patient_ref"],
        received,
    )


def _batch(device: str) -> list[tuple[Any, ...]]:
    plus_two = timezone(timedelta(hours=2))
    return [
        _row(device, "r1", datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        _row(device, "r2", datetime(2026, 2, 1, 1, 0, tzinfo=plus_two), value=61.5),
        _row(
            device,
            "bp",
            datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
            metric="blood_pressure",
            value=120.0,
            components={"systolic": 120.0, "diastolic": 80.25},
            unit="mm[Hg]",
        ),
        _row(device, "old", datetime(1970, 1, 1, tzinfo=UTC), patient_ref=None),
        _row(device, "a:b.c-d_e", datetime(2026, 3, 3, 8, 1, tzinfo=UTC), value=1e-7),
    ]


async def test_a_batch_stored_as_arrays_stores_what_the_rows_store(
    pg_devices: DevicesHarness,
) -> None:
    """``insert_rows`` on PostgreSQL (one statement of arrays) against ``insert_new`` (the keys,
    then the readings, row by row): the same answers, the same stored rows and keys."""
    stored: dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]] = {}
    for device in ("by-rows", "as-arrays"):
        batch = _batch(device)
        again = [batch[1], _row(device, "r3", datetime(2026, 4, 1, tzinfo=UTC)), batch[3]]
        answers = []
        for rows in (batch, again):
            async with pg_devices.database.unit_of_work() as session:
                repository = ReadingRepository(session)
                if device == "by-rows":
                    named = [dict(zip(READING_COLUMNS, row, strict=True)) for row in rows]
                    answers.append(await repository.insert_new(named))
                else:
                    answers.append(await repository.insert_rows(rows))
        stored[device] = (answers[0], answers[1])

    def renamed(keys: set[tuple[str, str]]) -> set[str]:
        return {reading_id for _, reading_id in keys}

    by_rows, as_arrays = stored["by-rows"], stored["as-arrays"]
    assert [renamed(keys) for keys in as_arrays] == [renamed(keys) for keys in by_rows]
    assert renamed(as_arrays[1]) == {"r3"}
    columns = "reading_id, ts, metric, value, components::text, unit, patient_ref, received"
    for table, selected in (("readings", columns), ("reading_keys", "reading_id, ts")):
        found = {
            device: await pg_devices.rows(
                f"SELECT {selected}, tableoid::regclass::text FROM {table}"
                " WHERE device_id = :device ORDER BY reading_id",
                device=device,
            )
            for device in stored
        }
        assert found["as-arrays"] == found["by-rows"]
        assert len(found["by-rows"]) == 6


async def test_readings_of_three_months_land_in_three_partitions(
    pg_devices: DevicesHarness,
) -> None:
    device = await pg_devices.assigned("Patient/p1")
    batch = [
        # A clock reset to 1970 makes no partition of its own.
        entry("reset-clock", "1970-01-01T00:00:05Z"),
        entry("jan", "2026-01-31T23:59:59Z"),
        entry("feb-first", "2026-02-01T00:00:00Z"),
        # 23:30 on 28 February in UTC: February's, whatever the offset says.
        entry("feb-last", "2026-03-01T00:30:00+01:00"),
        entry("mar", "2026-03-15T12:00:00Z"),
    ]
    before = await pg_devices.rows(PARTITIONS)

    stored = await send(pg_devices, device, batch)
    repeated = await send(pg_devices, device, batch)

    assert before == [("readings_before_2000",)]
    assert (stored["stored"], stored["duplicates"]) == (5, 0)
    assert (repeated["stored"], repeated["duplicates"]) == (0, 5)
    assert await pg_devices.rows(PARTITIONS) == [
        ("readings_2026_01",),
        ("readings_2026_02",),
        ("readings_2026_03",),
        ("readings_before_2000",),
    ]
    assert await pg_devices.rows(
        "SELECT tableoid::regclass::text, reading_id FROM readings ORDER BY ts"
    ) == [
        ("readings_before_2000", "reset-clock"),
        ("readings_2026_01", "jan"),
        ("readings_2026_02", "feb-first"),
        ("readings_2026_02", "feb-last"),
        ("readings_2026_03", "mar"),
    ]
    assert await listed(pg_devices, device) == [
        ("jan", "2026-01-31T23:59:59Z", 72.0),
        ("feb-first", "2026-02-01T00:00:00Z", 72.0),
        ("feb-last", "2026-02-28T23:30:00Z", 72.0),
        ("mar", "2026-03-15T12:00:00Z", 72.0),
    ]


async def test_batches_at_once_make_a_new_month_once(pg_devices: DevicesHarness) -> None:
    device = await pg_devices.assigned("Patient/p1")
    # Six batches at once, all in two months without a partition (December 2025, January
    # 2026); batches n and n + 3 are the same.
    months = ["2025-12", "2026-01"]
    batches = [
        [entry(f"b{n % 3}-{i}", f"{months[i % 2]}-0{1 + n % 3}T08:00:00Z") for i in range(4)]
        for n in range(6)
    ]

    answers = await asyncio.gather(*(send(pg_devices, device, batch) for batch in batches))

    assert sum(a["stored"] for a in answers) == 12
    assert sum(a["duplicates"] for a in answers) == 12
    assert await pg_devices.rows(PARTITIONS) == [
        ("readings_2025_12",),
        ("readings_2026_01",),
        ("readings_before_2000",),
    ]
    assert await pg_devices.rows(
        "SELECT tableoid::regclass::text, count(*) FROM readings GROUP BY 1 ORDER BY 1"
    ) == [("readings_2025_12", 6), ("readings_2026_01", 6)]
    assert await pg_devices.rows("SELECT count(*) FROM reading_keys") == [(12,)]


async def test_a_month_being_made_holds_up_no_other_batch(pg_devices: DevicesHarness) -> None:
    device = await pg_devices.assigned("Patient/p1")
    await send(pg_devices, device, [entry("jan-1", "2026-01-10T08:00:00Z")])

    async with pg_devices.database.unit_of_work() as session:
        # June's partition made and not committed yet: a batch of January is stored meanwhile
        # (a wait for this transaction would never end; the timeout only guards against a hang).
        made = await ReadingPartitions(session).ensure([datetime(2026, 6, 15, tzinfo=UTC)])
        meanwhile = await asyncio.wait_for(
            send(pg_devices, device, [entry("jan-2", "2026-01-11T08:00:00Z")]), 60
        )
        read = await asyncio.wait_for(listed(pg_devices, device), 60)

    assert made == ["readings_2026_06"]
    assert (meanwhile["stored"], meanwhile["duplicates"]) == (1, 0)
    assert [reading_id for reading_id, _, _ in read] == ["jan-1", "jan-2"]
    assert ("readings_2026_06",) in await pg_devices.rows(PARTITIONS)


class Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement, with its parameters bound as the query's."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def _scans(node: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(node type, table, index) of every scan of a table in a plan, depth first."""
    found: list[tuple[str, str, str | None]] = []
    if "Relation Name" in node:
        found.append((node["Node Type"], node["Relation Name"], node.get("Index Name")))
    for child in node.get("Plans", []):
        found.extend(_scans(child))
    return found


def _window(
    start: datetime, end: datetime, *, device_id: str | None = None, patient_ref: str | None = None
) -> Window:
    return Window(
        device_id=device_id,
        patient_ref=patient_ref,
        metric=None,
        start=start,
        end=end,
        bound_patient=None,
    )


async def _fill_four_months(devices: DevicesHarness) -> dict[str, Any]:
    """Eight devices' hourly heart rates from January to April 2026 (23,040 readings), stored
    through the ingest repository, then analyzed; the first device is Patient/p1's."""
    device = await devices.assigned("Patient/p1")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = int((datetime(2026, 5, 1, tzinfo=UTC) - start).total_seconds() // 3600)
    ids = [device["id"], *(f"dev_other_{n}" for n in range(7))]
    rows = [
        {
            "device_id": device_id,
            "reading_id": f"h{hour}",
            "ts": start + timedelta(hours=hour),
            "metric": "heart_rate",
            "value": 60.0 + hour % 40,
            "components": None,
            "unit": "/min",
            "patient_ref": f"Patient/p{n + 1}",
            "received": start,
        }
        for n, device_id in enumerate(ids)
        for hour in range(hours)
    ]
    async with devices.database.unit_of_work() as session:
        inserted = await ReadingRepository(session).insert_new(rows)
    assert len(inserted) == len(rows) == 23_040
    async with devices.database.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE readings")
    return device


FEB_20, MAR_2, MAR_3, MAR_6 = (
    datetime(2026, 2, 20, tzinfo=UTC),
    datetime(2026, 3, 2, tzinfo=UTC),
    datetime(2026, 3, 3, tzinfo=UTC),
    datetime(2026, 3, 6, tzinfo=UTC),
)


async def test_a_window_query_reads_only_the_partitions_of_its_months(
    pg_devices: DevicesHarness,
) -> None:
    device = await _fill_four_months(pg_devices)
    statements: dict[str, Select[Any]] = {
        "device, 20 Feb - 6 Mar": raw_statement(
            _window(FEB_20, MAR_6, device_id=device["id"]), None, 100
        ),
        "patient, 20 Feb - 6 Mar": raw_statement(
            _window(FEB_20, MAR_6, patient_ref="Patient/p1"), None, 100
        ),
        "device, 2 - 3 Mar": raw_statement(
            _window(MAR_2, MAR_3, device_id=device["id"]), None, 100
        ),
        "device's hourly aggregate, 20 Feb - 6 Mar": aggregate_statement(
            "postgresql", _window(FEB_20, MAR_6, device_id=device["id"]), 3600
        ),
    }
    plans: dict[str, list[tuple[str, str, str | None]]] = {}
    async with pg_devices.database.engine.connect() as conn:
        for name, stmt in statements.items():
            plan = (await conn.execute(Explain(stmt))).scalar_one()
            plans[name] = _scans(plan[0]["Plan"])

    by_device = [
        ("Index Scan", "readings_2026_02", "readings_2026_02_device_id_ts_idx"),
        ("Index Scan", "readings_2026_03", "readings_2026_03_device_id_ts_idx"),
    ]
    assert plans == {
        "device, 20 Feb - 6 Mar": by_device,
        "patient, 20 Feb - 6 Mar": [
            ("Index Scan", "readings_2026_02", "readings_2026_02_patient_ref_ts_idx"),
            ("Index Scan", "readings_2026_03", "readings_2026_03_patient_ref_ts_idx"),
        ],
        "device, 2 - 3 Mar": [by_device[1]],
        "device's hourly aggregate, 20 Feb - 6 Mar": by_device,
    }
    first_page = await pg_devices.ok(
        "GET",
        f"/v1/devices/{device['id']}/readings",
        params={"start": "2026-02-28T22:00:00Z", "end": "2026-03-01T02:00:00Z"},
        headers=pg_devices.headers(READ),
    )
    assert [(r["reading_id"], r["timestamp"]) for r in first_page["data"]] == [
        ("h1414", "2026-02-28T22:00:00Z"),
        ("h1415", "2026-02-28T23:00:00Z"),
        ("h1416", "2026-03-01T00:00:00Z"),
        ("h1417", "2026-03-01T01:00:00Z"),
    ]
