"""Benchmark of the devices window queries on SQLite (issue 15: "fast on a year of one-minute
readings for one patient"): a year of one-minute heart rates of one device and patient
(525,600 readings) stored three ways, each in a database of its own, and the same queries on
each, in process (median of ``BENCH_WINDOW_REPEAT`` runs):

- ``rows`` (the control): the layout before migration 0005, one row a reading with its (device,
  time) and (patient, time) indexes (a database at revision 0004, queried with the statements
  that read it, which are the view's);
- ``chunks``: the readings as ingest stores batches of 1,000 (one chunk a batch and day);
- ``chunks_of_one``: every reading a chunk of its own, as a device that sends one reading a
  minute, alone, leaves them (each its own batch), before compaction;
- ``compacted``: the same after compaction (one chunk an hour; its time reported too).

Queries: the patient's first page of 1,000 readings of the year, a page from the middle (after
a cursor), one day whole (1,440), and the year aggregated per hour and per day.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medmesh.devices.ingest.repository import READING_COLUMNS, ReadingRepository
from medmesh.devices.migrations import upgrade
from medmesh.devices.models import ReadingRow
from medmesh.devices.readings.chunks import StoredReading
from medmesh.devices.readings.compaction import ReadingCompaction
from medmesh.devices.readings.repository import (
    ReadingQueries,
    aggregate_statement,
    raw_statement,
)
from medmesh.devices.readings.window import Window
from medmesh.platform.db import Database

REPEAT = int(os.environ.get("BENCH_WINDOW_REPEAT", "5"))
MINUTES = int(os.environ.get("BENCH_WINDOW_MINUTES", str(365 * 24 * 60)))
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
DEVICE = "dev_bench"
PATIENT = "Patient/bench"
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 1000
LAYOUTS = ("rows", "chunks", "chunks_of_one", "compacted")


def _rows(one_each: bool) -> list[tuple[Any, ...]]:
    return [
        (
            DEVICE,
            f"r-{n}",
            YEAR_START + timedelta(minutes=n),
            "heart_rate",
            60.0 + n % 40,
            None,
            "/min",
            PATIENT,
            RECEIVED + timedelta(microseconds=n) if one_each else RECEIVED,
        )
        for n in range(MINUTES)
    ]


async def _load(database: Database, layout: str) -> float:
    rows = _rows(one_each=layout in ("chunks_of_one", "compacted"))
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        async with database.unit_of_work() as session:
            if layout == "rows":
                table = ReadingRow.__table__
                await session.execute(
                    table.insert(),  # type: ignore[attr-defined]
                    [dict(zip(READING_COLUMNS, row, strict=True)) for row in batch],
                )
            else:
                await ReadingRepository(session).insert_rows(batch)
    return time.perf_counter() - started


def _window(start: datetime, end: datetime) -> Window:
    return Window(
        device_id=None,
        patient_ref=PATIENT,
        metric="heart_rate",
        start=start,
        end=end,
        bound_patient=None,
    )


async def _raw(
    database: Database,
    layout: str,
    window: Window,
    after: tuple[datetime, str, str] | None,
    limit: int,
) -> int:
    async with database.sessionmaker() as session:
        if layout == "rows":
            result = await session.execute(raw_statement(window, after, limit))
            page = [StoredReading(*row) for row in result.all()]
        else:
            page = await ReadingQueries(session).raw(window, after, limit)
    return len(page)


async def _aggregate(database: Database, layout: str, window: Window, interval: int) -> int:
    async with database.sessionmaker() as session:
        plain = layout == "rows"
        stmt = aggregate_statement("sqlite", window, interval, plain=plain)
        return len((await session.execute(stmt)).all())


async def _median_ms(work: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    found = await work()  # warm-up (and the answer's size)
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2), found


async def _measure(folder: str, layout: str) -> dict[str, Any]:
    url = f"sqlite+medmesh:///{Path(folder) / (layout + '.db')}"
    await upgrade(url, "0004" if layout == "rows" else "head")
    database = Database(url)
    try:
        load_seconds = await _load(database, layout)
        result: dict[str, Any] = {"load_seconds": round(load_seconds, 1)}
        if layout == "compacted":
            started = time.perf_counter()
            merged = await ReadingCompaction(database).run(now=RECEIVED + timedelta(days=1))
            result["compaction_seconds"] = round(time.perf_counter() - started, 1)
            result["chunks_merged"] = merged
        year = _window(YEAR_START, YEAR_START + timedelta(minutes=MINUTES))
        middle = YEAR_START + timedelta(minutes=MINUTES // 2)
        day = _window(middle, middle + timedelta(days=1))
        queries: dict[str, Callable[[], Awaitable[int]]] = {
            "first_page_1000": lambda: _raw(database, layout, year, None, 1000),
            "middle_page_1000": lambda: _raw(database, layout, year, (middle, DEVICE, "r-x"), 1000),
            "one_day_1440": lambda: _raw(database, layout, day, None, 1440),
            "year_per_hour": lambda: _aggregate(database, layout, year, 3600),
            "year_per_day": lambda: _aggregate(database, layout, year, 86400),
        }
        for name, work in queries.items():
            ms, found = await _median_ms(work)
            result[name] = {"ms": ms, "rows": found}
        return result
    finally:
        await database.dispose()


async def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        results = {layout: await _measure(folder, layout) for layout in LAYOUTS}
    control = results["rows"]
    for layout in LAYOUTS[1:]:
        results[layout]["ratio_to_rows"] = {
            name: round(value["ms"] / control[name]["ms"], 2)
            for name, value in results[layout].items()
            if isinstance(value, dict) and name in control
        }
    return {"readings": MINUTES, **results}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
