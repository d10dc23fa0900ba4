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
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select

from medmesh.devices.ingest.repository import ReadingRepository
from medmesh.devices.models import ChunkKeyRow
from medmesh.devices.readings import chunk_repository
from medmesh.devices.readings.chunks import StoredReading
from medmesh.devices.readings.compaction import ReadingCompaction
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


async def _load(
    database: Database, seed: int, *, largest: int = 300, count: int = 2400
) -> list[tuple[Any, ...]]:
    """Batches of up to ``largest`` readings of the three devices, each sent once, a tenth
    again; each batch received a second after the one before."""
    rng = random.Random(seed)
    rows = [_reading(rng, rng.choice(DEVICES), n) for n in range(count)]
    sent = 0
    while sent < len(rows):
        size = rng.randrange(1, largest + 1)
        received = RECEIVED + timedelta(seconds=sent)
        rows[sent : sent + size] = [(*r[:8], received) for r in rows[sent : sent + size]]
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


async def _inconsistent_chunks(devices: DevicesHarness) -> list[tuple[Any, ...]]:
    """How many chunks hold readings of more than one hour, or whose bounds and summary are not
    those of the readings they hold."""
    each = "FROM json_each(c.readings) AS r"
    return await devices.rows(
        "SELECT count(*) FROM reading_chunks AS c WHERE c.count != json_array_length(c.readings)"
        f" OR c.first_ts != (SELECT min(r.value ->> 1) {each})"
        f" OR c.last_ts != (SELECT max(r.value ->> 1) {each})"
        " OR substr(c.first_ts, 1, 13) != substr(c.last_ts, 1, 13)"
        f" OR c.value_min != (SELECT min(r.value ->> 2) {each})"
        f" OR c.value_max != (SELECT max(r.value ->> 2) {each})"
        f" OR abs(c.value_sum - (SELECT sum(r.value ->> 2) {each})) > 1e-9 * abs(c.value_sum)"
    )


async def test_pages_aggregates_and_lookups_read_what_the_view_reads(
    devices: DevicesHarness,
) -> None:
    database = devices.database
    rows = await _load(database, seed=15)
    assert await _inconsistent_chunks(devices) == [(0,)]
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
        found = await chunk_repository.stored(session, keys)
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
    assert await _inconsistent_chunks(devices) == [(0,)]
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


HOURS = (
    "SELECT count(DISTINCT device_id || '|' || coalesce(patient_ref, '') || '|' || metric"
    " || '|' || substr(ts, 1, 13)) FROM readings"
)


async def test_compaction_merges_each_hour_over_and_changes_nothing_read(
    devices: DevicesHarness,
) -> None:
    database = devices.database
    # An hour of one device held in more chunks than one transaction of compaction looks at,
    # before the others.
    burst = START + timedelta(days=4, hours=2)
    for n in range(450):
        row = ("dev_c", f"burst-{n}", burst + timedelta(seconds=n), "weight", 80.0 + n % 7)
        await _store_one(database, (*row, None, "kg", None, RECEIVED + timedelta(seconds=n)))
    await _load(database, seed=7, largest=4, count=1500)
    everything = "SELECT * FROM readings ORDER BY device_id, reading_id"
    before = await devices.rows(everything)
    chunks_before = (await devices.rows("SELECT count(*) FROM reading_chunks"))[0][0]
    hours = (await devices.rows(HOURS))[0][0]
    assert chunks_before > hours  # hours held in several chunks
    windows = _windows(random.Random(3))
    pages = [await _plain_raw(database, window) for window in windows]

    registry = CollectorRegistry()
    compaction = ReadingCompaction(database, Counter("merged", "chunks", registry=registry))
    merged = await compaction.run(now=START + timedelta(days=10))
    assert merged == chunks_before - hours
    assert registry.get_sample_value("merged_total") == merged
    assert await devices.rows("SELECT count(*) FROM reading_chunks") == [(hours,)]
    assert await devices.rows(everything) == before  # received times included
    assert await _inconsistent_chunks(devices) == [(0,)]
    assert await devices.rows(KEYS_AND_HOLDERS) == [(0,)]
    for window, page in zip(windows, pages, strict=True):
        assert await _paged(database, window, 50) == page
    assert await compaction.run(now=START + timedelta(days=10)) == 0

    # A reading of an hour looked at before, stored later, is merged by a later run; an hour
    # not over yet is left until it is.
    now = START + timedelta(days=10, minutes=5)
    weight = ("weight", 70.0, None, "kg")
    past = START + timedelta(hours=3)
    await _store_one(database, ("dev_a", "late-1", past, *weight, PATIENTS[0], now))
    assert await compaction.run(now=now) == 0
    await _store_one(
        database, ("dev_a", "late-2", past + timedelta(minutes=9), *weight, PATIENTS[0], now)
    )
    for n in (1, 2):
        received = now + timedelta(seconds=n)
        await _store_one(
            database, ("dev_a", f"now-{n}", now - timedelta(minutes=n), *weight, None, received)
        )
    assert await compaction.run(now=now) == 1
    weights = "SELECT count, substr(first_ts, 1, 13) FROM reading_chunks WHERE metric = 'weight' AND device_id = 'dev_a' ORDER BY first_ts"
    assert await devices.rows(weights) == [
        (2, "2026-03-01 03"),
        (1, "2026-03-11 00"),
        (1, "2026-03-11 00"),
    ]
    assert await compaction.run(now=now + timedelta(hours=1)) == 1
    assert await devices.rows(weights) == [(2, "2026-03-01 03"), (2, "2026-03-11 00")]
    assert await devices.rows(
        "SELECT reading_id, received FROM readings WHERE metric = 'weight' AND device_id = 'dev_a' ORDER BY ts"
    ) == [
        ("late-1", "2026-03-11 00:05:00.000000"),
        ("late-2", "2026-03-11 00:05:00.000000"),
        ("now-2", "2026-03-11 00:05:02.000000"),
        ("now-1", "2026-03-11 00:05:01.000000"),
    ]
    assert await _inconsistent_chunks(devices) == [(0,)]
    assert await devices.rows(KEYS_AND_HOLDERS) == [(0,)]


async def _store_one(database: Database, row: tuple[Any, ...]) -> None:
    async with database.unit_of_work() as session:
        assert await ReadingRepository(session).insert_rows([row]) == {(row[0], row[1])}


async def test_compaction_fills_chunks_up_to_their_most_and_merges_no_further(
    devices: DevicesHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunk_repository, "MAX_MERGED", 100)
    database = devices.database
    hour = START + timedelta(hours=5)
    for n in range(250):
        row = ("dev_b", f"s-{n}", hour + timedelta(seconds=n), "spo2", 90.0 + n % 9, None, "%")
        await _store_one(database, (*row, PATIENTS[1], RECEIVED + timedelta(seconds=n)))
    before = await devices.rows("SELECT * FROM readings ORDER BY reading_id")
    compaction = ReadingCompaction(database)
    assert await compaction.run(now=START + timedelta(days=1)) == 247
    chunks = "SELECT count FROM reading_chunks ORDER BY id"
    assert await devices.rows(chunks) == [(100,), (100,), (50,)]
    assert await devices.rows("SELECT * FROM readings ORDER BY reading_id") == before
    assert await ReadingCompaction(database).run(now=START + timedelta(days=1)) == 0
    assert await devices.rows(chunks) == [(100,), (100,), (50,)]
    assert await _inconsistent_chunks(devices) == [(0,)]
    assert await devices.rows(KEYS_AND_HOLDERS) == [(0,)]


#: Keys whose chunk does not hold their reading, or readings whose key names another chunk.
KEYS_AND_HOLDERS = (
    "SELECT count(*) FROM reading_chunk_keys AS k FULL JOIN"
    " (SELECT c.id, c.device_id, r.value ->> 0 AS reading_id"
    " FROM reading_chunks AS c, json_each(c.readings) AS r) AS h"
    " ON h.device_id = k.device_id AND h.reading_id = k.reading_id AND h.id = k.chunk_id"
    " WHERE h.id IS NULL OR k.chunk_id IS NULL"
)
