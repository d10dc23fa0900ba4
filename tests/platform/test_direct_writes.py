"""``write_transaction`` on the embedded driver's writer connection against the plain path (a
Core transaction on an engine connection): the same statements store the same rows, byte for
byte, answer the same and fail with the same errors; a transaction commits or rolls back whole;
it queues with the driver's other writers; what it cannot run as compiled it refuses."""

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, StatementError

from medmesh.platform.db import (
    Database,
    Statement,
    UTCDateTime,
    new_metadata,
    write_transaction,
)
from medmesh.platform.db.direct_writes import direct_applies

metadata = new_metadata()
items = Table(
    "items",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(40), nullable=True),
    Column("amount", Integer, nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("data", JSON, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("ended", UTCDateTime, nullable=True),
)
with_default = Table(
    "with_default",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("count", Integer, default=0),
)
ADD = insert(items)
PAY = (
    update(items)
    .where(items.c.owner == bindparam("b_owner"), items.c.paid.is_(False))
    .values(paid=True, data=bindparam("b_data"), ended=bindparam("b_ended"))
)
DROP = delete(items).where(items.c.amount < bindparam("b_below"))
OWNED = select(items.c.id, items.c.amount, items.c.data, items.c.at, items.c.ended).where(
    items.c.owner == bindparam("b_owner")
)
UNPAID = select(items.c.id).where(items.c.paid.is_(False), items.c.owner != "nobody")

AT = datetime(2026, 12, 4, 10, 30, 15, 123_456, tzinfo=UTC)
OTHER_ZONE = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-9, minutes=-30)))


def _row(n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": f"item-{n:03d}",
        "owner": f"owner-{n % 3}" if n % 5 else None,
        "amount": n * 100,
        "paid": False,
        "data": [None, {"n": n, "tags": ["a", "b"]}, "text", [n, None]][n % 4],
        "at": AT + timedelta(seconds=n) if n % 2 else OTHER_ZONE,
        "ended": None,
    }
    return {**row, **changes}


async def _database(path: Path, *, plain: bool) -> Database:
    database = Database(f"sqlite+medmesh:///{path}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    if plain:
        # Something listening to the engine's statements (tracing): the plain path serves.
        event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: None)
    return database


async def _scenario(database: Database) -> list[Any]:
    """Every kind of statement and outcome; what each step answered."""
    answers: list[Any] = []
    async with write_transaction(database) as tx:
        answers.append(await tx.execute(ADD, _row(1)))
        answers.append(await tx.execute(ADD, [_row(n) for n in range(2, 12)]))
        # A read in the transaction sees its own writes.
        answers.append(await tx.all(OWNED, {"b_owner": "owner-1"}))
    async with write_transaction(database) as tx:
        later = AT + timedelta(days=1)
        answers.append(
            await tx.execute(PAY, {"b_owner": "owner-1", "b_data": None, "b_ended": later})
        )
        answers.append(
            await tx.execute(PAY, {"b_owner": "owner-1", "b_data": {}, "b_ended": later})
        )
        answers.append(await tx.execute(DROP, {"b_below": 300}))
        await tx.execute_all([(ADD, _row(20)), (ADD, [_row(21), _row(22)])])
        answers.append(await tx.all(UNPAID))
    with pytest.raises(IntegrityError):
        # The key is taken: nothing of this transaction stays.
        await _transaction(database, (ADD, _row(30)), (ADD, _row(5)))
    with pytest.raises(RuntimeError, match="changed my mind"):
        await _transaction(database, (ADD, _row(31)), failure=RuntimeError("changed my mind"))
    with pytest.raises(StatementError, match="naive datetime"):
        await _transaction(database, (ADD, _row(32, at=datetime(2026, 1, 1))))
    async with write_transaction(database) as tx:
        answers.append(await tx.execute(ADD, []))
        answers.append(await tx.all(OWNED, {"b_owner": "owner-2"}))
    async with write_transaction(database):
        pass  # begins nothing
    return answers


async def _transaction(
    database: Database, *statements: Statement, failure: Exception | None = None
) -> None:
    """Run ``statements`` in a write transaction, then raise ``failure`` inside it."""
    async with write_transaction(database) as tx:
        await tx.execute_all(statements)
        if failure is not None:
            raise failure


def _stored(path: Path) -> list[tuple[Any, ...]]:
    """The stored rows as SQLite keeps them (text, not SQLAlchemy's reading of it)."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM items ORDER BY id").fetchall()


async def test_the_direct_path_stores_answers_and_fails_as_the_plain_one(tmp_path: Path) -> None:
    results = {}
    for plain in (True, False):
        path = tmp_path / f"{'plain' if plain else 'direct'}.db"
        database = await _database(path, plain=plain)
        try:
            assert direct_applies(database) is not plain
            answers = await _scenario(database)
        finally:
            await database.dispose()
        results[plain] = (answers, _stored(path))

    plain_answers, plain_rows = results[True]
    direct_answers, direct_rows = results[False]
    assert direct_rows == plain_rows
    assert direct_answers == plain_answers
    ids = [row[0] for row in plain_rows]
    assert not {"item-030", "item-031", "item-032"} & set(ids)
    assert plain_answers[:2] == [1, 10]
    assert plain_answers[3] > 0
    assert plain_answers[4] == 0  # the second PAY found none unpaid


async def test_a_transaction_queues_with_the_drivers_other_writers(tmp_path: Path) -> None:
    database = await _database(tmp_path / "queue.db", plain=False)
    order: list[str] = []

    async def session_write() -> None:
        async with database.unit_of_work() as session:
            await session.execute(ADD, _row(50))
        order.append("session committed")

    try:
        assert direct_applies(database)
        async with write_transaction(database) as tx:
            await tx.execute(ADD, _row(40))
            other = asyncio.create_task(session_write())
            await asyncio.sleep(0.05)  # the session's insert waits for this transaction
            order.append("transaction ending")
        await other
        async with write_transaction(database) as tx:
            stored = await tx.all(select(items.c.id).order_by(items.c.id))
    finally:
        await database.dispose()

    assert order == ["transaction ending", "session committed"]
    assert stored == [("item-040",), ("item-050",)]


async def test_what_the_direct_path_cannot_run_as_compiled_is_refused(tmp_path: Path) -> None:
    database = await _database(tmp_path / "refused.db", plain=False)
    try:
        assert direct_applies(database)
        with pytest.raises(TypeError, match="RETURNING"):
            async with write_transaction(database) as tx:
                await tx.execute(insert(items).returning(items.c.id), _row(1))
        with pytest.raises(TypeError, match="Python-side defaults"):
            async with write_transaction(database) as tx:
                await tx.execute(insert(with_default), {"id": "a"})
        with pytest.raises(TypeError, match="expanding IN"):
            async with write_transaction(database) as tx:
                await tx.all(select(items.c.id).where(items.c.id.in_(["a", "b"])))
        with pytest.raises(TypeError, match="no value for the parameter"):
            async with write_transaction(database) as tx:
                await tx.execute(PAY, {"b_owner": "x"})
        # Nothing was begun or kept: the writer queue is free.
        async with write_transaction(database) as tx:
            assert await tx.execute(ADD, _row(2)) == 1
    finally:
        await database.dispose()


async def test_write_transaction_on_either_database(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        async with write_transaction(database) as tx:
            await tx.execute(ADD, [_row(1), _row(4)])
        with pytest.raises(IntegrityError):
            await _transaction(database, (ADD, _row(7)), (ADD, _row(4)))
        async with write_transaction(database) as tx:
            changed = await tx.execute(PAY, {"b_owner": "owner-1", "b_data": None, "b_ended": AT})
            found = await tx.all(OWNED, {"b_owner": "owner-1"})
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await database.dispose()

    assert changed == 2
    assert sorted(found) == [
        ("item-001", 100, None, AT + timedelta(seconds=1), AT),
        ("item-004", 400, None, OTHER_ZONE.astimezone(UTC), AT),
    ]
