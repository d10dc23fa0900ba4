"""The group commit of direct write transactions on the embedded driver: concurrent transactions
share one SQLite transaction, each commits exactly its own statements, a member's failure or
cancellation undoes only its own, every member learns of a failed group commit, and session
writers keep their turn."""

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, String, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from medmesh.platform.db import Database, new_metadata, write_transaction
from medmesh.platform.db import sqlite as sqlite_driver
from medmesh.platform.db.direct_writes import direct_applies
from medmesh.platform.db.sqlite import groups

metadata = new_metadata()
notes = Table(
    "notes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(40), nullable=False),
    Column("n", Integer, nullable=False),
)
ADD = insert(notes)
ALL = select(notes.c.id).order_by(notes.c.id)
BUMP = update(notes).where(notes.c.owner == bindparam("b_owner")).values(n=notes.c.n + 1)


@pytest.fixture
async def database(tmp_path: Path) -> Any:
    db = Database(f"sqlite+medmesh:///{tmp_path / 'groups.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    assert direct_applies(db)
    try:
        yield db
    finally:
        await db.dispose()


def _stored(database: Database) -> list[str]:
    path = database.engine.url.database
    assert path is not None
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM notes ORDER BY id")]


def _commits(database: Database) -> list[int]:
    """Counts the COMMITs of the file's writer connection from here on (the group's)."""
    dbapi = database.engine.sync_engine.dialect.dbapi
    assert isinstance(dbapi, sqlite_driver.DBAPI)
    found = dbapi.writer_of(str(database.engine.url.database))
    assert found is not None
    conn = dbapi.writers[found[0]].connection()
    commits: list[int] = []
    conn.set_trace_callback(lambda sql: commits.append(1) if sql == "COMMIT" else None)
    return commits


async def _write(database: Database, *ids: str, fail: bool = False) -> None:
    async with write_transaction(database) as tx:
        for note in ids:
            await tx.execute(ADD, {"id": note, "owner": ids[0], "n": 0})
        if fail:
            raise RuntimeError(f"{ids[0]} changed its mind")


async def test_concurrent_transactions_commit_together_each_exactly_its_own(
    database: Database,
) -> None:
    commits = _commits(database)
    outcomes = await asyncio.gather(
        *(_write(database, f"a{n}-1", f"a{n}-2", fail=n in (0, 5)) for n in range(10)),
        return_exceptions=True,
    )

    failed = [n for n, outcome in enumerate(outcomes) if isinstance(outcome, RuntimeError)]
    assert failed == [0, 5]  # the group's first member too: its rollback is its own
    assert _stored(database) == sorted(
        f"a{n}-{k}" for n in range(10) if n not in (0, 5) for k in (1, 2)
    )
    assert len(commits) < 8  # eight committed transactions, fewer commits


async def test_a_member_reads_what_earlier_members_released(database: Database) -> None:
    await _write(database, "base")

    async def bump_and_read() -> int:
        async with write_transaction(database) as tx:
            await tx.execute(BUMP, {"b_owner": "base"})
            rows = await tx.all(select(notes.c.n).where(notes.c.id == "base"))
            return int(rows[0][0])

    seen = await asyncio.gather(*(bump_and_read() for _ in range(5)))
    assert sorted(seen) == [1, 2, 3, 4, 5]


async def test_a_duplicate_key_fails_only_its_member(database: Database) -> None:
    outcomes = await asyncio.gather(
        _write(database, "k1"),
        _write(database, "k1"),
        _write(database, "k2"),
        return_exceptions=True,
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], IntegrityError)
    assert outcomes[2] is None
    assert _stored(database) == ["k1", "k2"]


async def test_a_failed_group_commit_fails_every_member_that_was_in_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_close = groups.WriteGroup._close

    def close_failing(self: groups.WriteGroup, *, rollback: bool = False) -> None:
        # The disk is full at the group's COMMIT: SQLite rolls the transaction back.
        conn = self._conn
        assert conn is not None
        conn.execute("ROLLBACK")
        real_close(self, rollback=rollback)

    monkeypatch.setattr(groups.WriteGroup, "_close", close_failing)
    outcomes = await asyncio.gather(
        *(_write(database, f"f{n}") for n in range(4)), return_exceptions=True
    )
    monkeypatch.undo()

    assert all(isinstance(outcome, OperationalError) for outcome in outcomes)
    assert _stored(database) == []
    await _write(database, "after")  # the writer queue is free again
    assert _stored(database) == ["after"]


async def test_a_cancelled_waiting_member_leaves_the_others_to_commit(database: Database) -> None:
    release = asyncio.Event()

    async def first() -> None:
        async with write_transaction(database) as tx:
            await tx.execute(ADD, {"id": "first", "owner": "x", "n": 0})
            await release.wait()  # holds the group open while the others queue

    holder = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(_write(database, f"w{n}")) for n in range(3)]
    await asyncio.sleep(0.01)
    waiting[1].cancel()
    release.set()
    await holder
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)

    assert outcomes[0] is None
    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert outcomes[2] is None
    assert _stored(database) == ["first", "w0", "w2"]


async def test_a_member_cancelled_while_its_group_lingers_still_closes_it(
    database: Database,
) -> None:
    cancelled = asyncio.create_task(_write(database, "released"))
    await asyncio.sleep(0)  # it ran, released its statements and lets the loop turn
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    await asyncio.wait_for(_write(database, "next"), timeout=5)  # the writer queue is free
    # Released before the cancellation: committed with the group it had joined.
    assert _stored(database) == ["next", "released"]


async def test_session_writers_keep_their_turn_between_groups(database: Database) -> None:
    order: list[str] = []

    async def session_write() -> None:
        async with database.unit_of_work() as session:
            await session.execute(ADD, {"id": "session", "owner": "s", "n": 0})
        order.append("session")

    async def direct_write(name: str) -> None:
        await _write(database, name)
        order.append(name)

    release = asyncio.Event()

    async def first() -> None:
        async with write_transaction(database) as tx:
            await tx.execute(ADD, {"id": "d0", "owner": "d", "n": 0})
            await release.wait()
        order.append("d0")

    holder = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    session = asyncio.create_task(session_write())
    await asyncio.sleep(0.01)
    later = asyncio.create_task(direct_write("d1"))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(holder, session, later)

    # d1 joined the open group (it committed with d0); the session writer waited for the lock.
    assert order.index("d0") < order.index("session")
    assert order.index("d1") < order.index("session")
    assert _stored(database) == ["d0", "d1", "session"]


async def test_a_group_takes_at_most_max_members(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups, "MAX_MEMBERS", 3)
    commits = _commits(database)
    await asyncio.gather(*(_write(database, f"m{n}") for n in range(9)))

    assert _stored(database) == [f"m{n}" for n in range(9)]
    assert len(commits) >= 3
