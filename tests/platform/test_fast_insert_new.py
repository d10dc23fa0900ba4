"""``InsertNew``'s multi-row SQLite path against the plain Core statement: the same rows stored,
byte for byte, and the same keys answered; ``sqlite_datetime_text`` against SQLAlchemy's
processors; and the plain path wherever the direct one does not apply."""

import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Float, String, Table, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError

from medmesh.platform.db import Database, UTCDateTime, new_metadata
from medmesh.platform.db.insert_new import InsertNew
from medmesh.platform.db.types import sqlite_datetime_text, utc_bind_text

metadata = new_metadata()
samples = Table(
    "samples",
    metadata,
    Column("source", String(40), primary_key=True),
    Column("sample_id", String(128), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("value", Float, nullable=False),
    Column("parts", JSON, nullable=True),
    Column("owner", String(80), nullable=True),
    Column("ended", UTCDateTime, nullable=True),
)
COLUMNS = ("source", "sample_id", "at", "value", "parts", "owner", "ended")
NEW_SAMPLES = InsertNew(samples, COLUMNS, ["source", "sample_id"])

ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]


def _rows(seed: int, count: int) -> list[tuple[Any, ...]]:
    """Rows of every kind of value: zones, microseconds, null and object JSON, null columns, one
    shared datetime object, and keys repeated inside the batch."""
    draw = random.Random(seed)
    shared = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    rows = []
    for n in range(count):
        at = datetime(
            draw.randint(1990, 2030),
            draw.randint(1, 12),
            draw.randint(1, 28),
            draw.randint(0, 23),
            draw.randint(0, 59),
            draw.randint(0, 59),
            draw.choice([0, draw.randint(0, 999_999)]),
            tzinfo=draw.choice(ZONES),
        )
        parts = draw.choice([None, {"systolic": 120.0, "diastolic": draw.randint(40, 90)}])
        source = f"src-{draw.randint(0, 9)}"
        sample_id = f"s-{draw.randint(0, count)}"  # repeats: the first row wins
        rows.append(
            (
                source,
                sample_id,
                at,
                draw.uniform(-1e6, 1e6),
                parts,
                draw.choice([None, f"Patient/{n}"]),
                draw.choice([None, shared]),
            )
        )
    return rows


async def _insert(database: Database, rows: list[tuple[Any, ...]], *, direct: bool) -> list[Any]:
    async with database.unit_of_work() as session:
        if direct:
            return await session.run_sync(lambda s: NEW_SAMPLES.direct(s.connection(), rows))
        return await session.run_sync(lambda s: NEW_SAMPLES.plain(s.connection(), rows))


def _stored(path: Path) -> list[tuple[Any, ...]]:
    """The stored rows as SQLite keeps them (text, not SQLAlchemy's reading of it)."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM samples ORDER BY source, sample_id").fetchall()


async def test_the_multi_row_path_stores_and_answers_as_the_core_statement(tmp_path: Path) -> None:
    answers = {}
    for direct in (False, True):
        path = tmp_path / f"{'direct' if direct else 'plain'}.db"
        database = Database(f"sqlite+medmesh:///{path}")
        try:
            async with database.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            first = await _insert(database, _rows(1, 1500), direct=direct)
            # A second batch meets the first's keys (and holds 1,100 rows: 512 + 512 + 64 + 8 + 4).
            second = await _insert(database, _rows(2, 1100), direct=direct)
        finally:
            await database.dispose()
        answers[direct] = (first, second, _stored(path))

    plain, direct_answer = answers[False], answers[True]
    assert direct_answer[2] == plain[2]
    assert direct_answer[0] == plain[0]
    assert direct_answer[1] == plain[1]
    # Both batches had repeats and the second met the first's keys: not everything was new.
    assert len(plain[0]) < 1500
    assert len(plain[1]) < 1100
    assert len(plain[2]) == len(plain[0]) + len(plain[1])


async def test_run_inserts_the_new_rows_on_either_database(database_url: str) -> None:
    database = Database(database_url)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = ("src-a", "1", at, 1.5, {"k": 1}, None, None)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        async with database.unit_of_work() as session:
            first = await NEW_SAMPLES.run(session, [row, ("src-a", "2", at, 2.5, None, "x", at)])
        async with database.unit_of_work() as session:
            again = await NEW_SAMPLES.run(session, [row, ("src-b", "1", at, 3.0, None, None, None)])
        async with database.unit_of_work() as session:
            nothing = await NEW_SAMPLES.run(session, [])
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await database.dispose()

    assert sorted(first) == [("src-a", "1"), ("src-a", "2")]
    assert again == [("src-b", "1")]
    assert nothing == []


async def test_a_listener_on_the_engine_sees_the_plain_statement(tmp_path: Path) -> None:
    database = Database(f"sqlite+medmesh:///{tmp_path / 'traced.db'}")
    seen: list[int] = []

    def listen(conn: object, cursor: object, statement: str, params: Any, *args: object) -> None:
        seen.append(statement.count("?"))

    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        event.listen(database.engine.sync_engine, "before_cursor_execute", listen)
        async with database.unit_of_work() as session:
            keys = await NEW_SAMPLES.run(session, _rows(3, 20))
    finally:
        await database.dispose()

    assert keys
    # The listener saw the statements of every row (the direct path runs none through the engine).
    assert sum(seen) == 20 * len(COLUMNS)


async def test_a_naive_datetime_is_refused_as_sqlalchemy_refuses_it(tmp_path: Path) -> None:
    database = Database(f"sqlite+medmesh:///{tmp_path / 'naive.db'}")
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        with pytest.raises(StatementError, match="naive datetime"):
            async with database.unit_of_work() as session:
                await NEW_SAMPLES.run(
                    session, [("s", "1", datetime(2024, 1, 1), 1.0, None, None, None)]
                )
    finally:
        await database.dispose()


def test_sqlite_datetime_text_is_what_the_column_type_writes() -> None:
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    draw = random.Random(7)
    moments = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(9999, 12, 31, 10, tzinfo=timezone(timedelta(hours=5))),
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-1))),
    ]
    for _ in range(5000):
        moments.append(
            datetime(2026, 1, 1, tzinfo=draw.choice(ZONES))
            + timedelta(seconds=draw.randint(-(10**9), 10**9), microseconds=draw.randint(0, 10**6))
        )
    assert [sqlite_datetime_text(m) for m in moments] == [process(m) for m in moments]
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_datetime_text(datetime(2024, 1, 1))
    # the direct writers' binding: the same texts, a null kept, a moment met twice in a row
    # answered from the last conversion, each new one converted
    twice = [m for moment in moments for m in (moment, moment, None)]
    assert [utc_bind_text(m) for m in twice] == [None if m is None else process(m) for m in twice]
