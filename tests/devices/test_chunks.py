"""SQLite's readings in chunks against the plain reading of the same data, the ``readings`` view
(one row per reading, migration 0005): pages of every kind of window followed to their end,
aggregates, readings looked up by key for delivery, and the retention's removal, on batches of
several devices, patients, metrics and days sent out of time order and partly again."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from medmesh.devices.ingest.repository import ReadingRepository
from medmesh.devices.models import ChunkKeyRow
from medmesh.devices.readings import chunks
from medmesh.devices.readings.chunks import StoredReading
from medmesh.devices.readings.repository import (
    COLUMNS,
    ExpiredReadings,
    ReadingQueries,
    aggregate_statement,
    raw_statement,
)
from medmesh.devices.readings.window import Window
from medmesh.platform.db import Database
from medmesh.platform.testing import DatabaseTemplates, Upgrade
from tests.devices.conftest import DevicesHarness

START = datetime(2026, 3, 1, tzinfo=UTC)
DEVICES = ("dev_a", "dev_b", "dev_c")
PATIENTS = ("Patient/p1", "Patient/p2", None)
RECEIVED = datetime(2026, 3, 9, tzinfo=UTC)


@pytest.fixture
async def database_url(
    tmp_path: Path, database_templates: DatabaseTemplates, database_upgrade: Upgrade
) -> AsyncIterator[str]:
    """Chunks are SQLite's layout: these tests run on SQLite only."""
    async with database_templates.database("sqlite", tmp_path, database_upgrade) as url:
        yield url


def _reading(rng: random.Random, device_id: str, n: int) -> tuple[Any, ...]:
    ts = START + timedelta(seconds=rng.randrange(0, 5 * 86400))
    if rng.random() < 0.1:  # readings at the same moment on several devices
        ts = START + timedelta(hours=rng.randrange(0, 5 * 24))
    if rng.random() < 0.2:
        ts += timedelta(microseconds=rng.randrange(1, 999_999))
    metric = rng.choice(("heart_rate", "spo2", "blood_pressure"))
    if metric == "blood_pressure":
        value = float(rng.randrange(90, 160))
        components: dict[str, float] | None = {
            "systolic": value,
            "diastolic": float(rng.randrange(50, 100)),
        }
        unit = "mm[Hg]"
    else:
        components = None
        value = rng.randrange(400, 1200) / 10
        unit = "/min" if metric == "heart_rate" else "%"
    # A device's patient changes on the third day.
    shift = 0 if ts < START + timedelta(days=2) else 1
    patient = PATIENTS[(DEVICES.index(device_id) + shift) % 3]
    return (device_id, f"r-{n}", ts, metric, value, components, unit, patient, RECEIVED)


async def _load(database: Database, seed: int) -> list[tuple[Any, ...]]:
    """Batches of up to 300 readings of the three devices, each sent once, a tenth again."""
    rng = random.Random(seed)
    rows = [_reading(rng, rng.choice(DEVICES), n) for n in range(2400)]
    sent = 0
    while sent < len(rows):
        size = rng.randrange(1, 300)
        batch = rows[sent : sent + size]
        again = rng.sample(rows[:sent], min(sent, size // 10)) if sent else []
        keys = {(r[0], r[1]) for r in batch}
        batch = batch + [r for r in again if (r[0], r[1]) not in keys]
        rng.shuffle(batch)
        async with database.unit_of_work() as session:
            stored = await ReadingRepository(session).insert_rows(batch)
        assert stored == {(r[0], r[1]) for r in rows[sent : sent + size]}
        sent += size
    return rows


def _windows(rng: random.Random) -> list[Window]:
    windows = []
    for _ in range(40):
        start = START + timedelta(seconds=rng.randrange(-86400, 5 * 86400))
        end = start + timedelta(seconds=rng.choice((1, 3600, 86400, 3 * 86400, 9 * 86400)))
        device = rng.choice((*DEVICES, None))
        patient = rng.choice(PATIENTS[:2]) if device is None or rng.random() < 0.3 else None
        windows.append(
            Window(
                device_id=device,
                patient_ref=patient,
                metric=rng.choice(("heart_rate", "spo2", "blood_pressure", None)),
                start=start,
                end=end,
                bound_patient=rng.choice(PATIENTS[:2]) if rng.random() < 0.2 else None,
            )
        )
    return windows


async def _plain_raw(database: Database, window: Window) -> list[StoredReading]:
    async with database.sessionmaker() as session:
        result = await session.execute(raw_statement(window, None, 1_000_000))
        return [StoredReading(*row) for row in result.all()]


async def _paged(database: Database, window: Window, limit: int) -> list[StoredReading]:
    pages: list[StoredReading] = []
    after: tuple[datetime, str, str] | None = None
    while True:
        async with database.sessionmaker() as session:
            page = await ReadingQueries(session).raw(window, after, limit)
        pages.extend(page)
        if len(page) < limit:
            return pages
        after = (page[-1].ts, page[-1].device_id, page[-1].reading_id)


async def test_pages_aggregates_and_lookups_read_what_the_view_reads(
    devices: DevicesHarness,
) -> None:
    database = devices.database
    rows = await _load(database, seed=15)
    assert await devices.rows("SELECT count(*) FROM readings") == [(len(rows),)]
    assert await devices.rows("SELECT count(*) FROM reading_chunk_keys") == [(len(rows),)]
    rng = random.Random(45)
    compared = 0
    for window in _windows(rng):
        plain = await _plain_raw(database, window)
        for limit in (1, 7, 100, 1000):
            assert await _paged(database, window, limit) == plain
        compared += len(plain)
        if window.metric is None:
            continue
        for interval in (60, 3600, 86400):
            async with database.sessionmaker() as session:
                chunked = (
                    await session.execute(aggregate_statement("sqlite", window, interval))
                ).all()
                by_view = (
                    await session.execute(
                        aggregate_statement("sqlite", window, interval, plain=True)
                    )
                ).all()
            assert [tuple(r[:4]) for r in chunked] == [tuple(r[:4]) for r in by_view]
            assert [r[4] for r in chunked] == pytest.approx([r[4] for r in by_view])
    assert compared > 2000  # the windows found readings, not only empty pages
    keys = [(r[0], r[1]) for r in rng.sample(rows, 700)] + [("dev_a", "never"), ("dev_x", "r-1")]
    async with database.sessionmaker() as session:
        found = await chunks.stored(session, keys)
        view = {
            (r[0], r[1]): StoredReading(*r) for r in (await session.execute(select(*COLUMNS))).all()
        }
    assert found == {key: view[key] for key in keys if key in view}
    assert len(found) == 700


async def test_retention_removes_what_the_view_finds_older(devices: DevicesHarness) -> None:
    database = devices.database
    rows = await _load(database, seed=44)
    horizon = START + timedelta(days=2, hours=7, minutes=13)
    old = {(r[0], r[1]) for r in rows if r[2] < horizon}
    before = await devices.rows("SELECT device_id, reading_id, ts, value FROM readings")
    removed = 0
    for device_id in DEVICES:
        while True:
            async with database.unit_of_work() as session:
                count = await ExpiredReadings(session).delete_readings(device_id, horizon, 100)
            removed += count
            if count < 100:
                break
    assert removed == len(old)
    after = await devices.rows("SELECT device_id, reading_id, ts, value FROM readings")
    assert sorted(after) == sorted(r for r in before if (r[0], r[1]) not in old)
    keys = await devices.rows("SELECT device_id, reading_id FROM reading_chunk_keys")
    assert set(keys) == {(r[0], r[1]) for r in after}
    # Each chunk's bounds and count are those of the readings it keeps.
    assert await devices.rows(
        "SELECT count(*) FROM reading_chunks AS c WHERE c.count != json_array_length(c.readings)"
        " OR c.first_ts != (SELECT min(r.value ->> 1) FROM json_each(c.readings) AS r)"
        " OR c.last_ts != (SELECT max(r.value ->> 1) FROM json_each(c.readings) AS r)"
    ) == [(0,)]
    async with database.sessionmaker() as session:
        chunk_of = dict(
            ((d, r), c)
            for d, r, c in await session.execute(
                select(ChunkKeyRow.device_id, ChunkKeyRow.reading_id, ChunkKeyRow.chunk_id)
            )
        )
    holders = await devices.rows(
        "SELECT c.device_id, r.value ->> 0, c.id FROM reading_chunks AS c, json_each(c.readings) AS r"
    )
    assert chunk_of == {(d, r): c for d, r, c in holders}
