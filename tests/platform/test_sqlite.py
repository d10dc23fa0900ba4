"""The embedded SQLite driver (``sqlite+medmesh``): statements on the loop, writers queued."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from medmesh.platform.db import Database, sqlite, sqlite_writer_engine
from medmesh.platform.db import engine as db_engine
from medmesh.platform.db import engine as engine_module
from tests.platform.write_lock import file_and_wal_bytes, in_turn_held_here, lock_held_elsewhere


@pytest.fixture
async def database(tmp_path: Path) -> Database:
    database = Database(f"sqlite+medmesh:///{tmp_path / 'driver.db'}")
    async with database.unit_of_work() as session:
        await session.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
    return database


async def _names(database: Database) -> list[str]:
    async with database.unit_of_work() as session:
        return list((await session.scalars(text("SELECT name FROM items ORDER BY id"))).all())


async def test_concurrent_writers_of_one_process_queue_instead_of_failing(
    database: Database,
) -> None:
    async def write(name: str) -> None:
        async with database.unit_of_work() as session:
            await session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": name})
            # Hold the write transaction across an await, as a request waiting for its audit does.
            await asyncio.sleep(0.01)
            await session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": name + "!"})

    await asyncio.gather(*(write(f"w{i}") for i in range(20)))

    names = await _names(database)
    assert len(names) == 40
    # Each writer's two rows are adjacent: the transactions ran one after the other.
    assert all(names[i] + "!" == names[i + 1] for i in range(0, 40, 2))
    await database.dispose()


async def test_readers_see_the_last_commit_while_a_writer_holds_its_transaction(
    database: Database,
) -> None:
    async with database.unit_of_work() as session:
        await session.execute(text("INSERT INTO items (name) VALUES ('committed')"))
    async with database.unit_of_work() as writer:
        await writer.execute(text("INSERT INTO items (name) VALUES ('pending')"))
        # The read does not wait for the writer (it would deadlock here if it did).
        assert await asyncio.wait_for(_names(database), 2) == ["committed"]
    assert await _names(database) == ["committed", "pending"]
    await database.dispose()


async def test_every_write_transaction_runs_on_the_files_one_writer_connection(
    database: Database, tmp_path: Path
) -> None:
    dbapi = database.engine.dialect.dbapi
    assert isinstance(dbapi, sqlite.DBAPI)
    writers = dbapi.writers
    async with database.unit_of_work() as session:
        await session.execute(text("INSERT INTO items (name) VALUES ('first')"))
    writer = writers[sqlite.file_key(str(tmp_path / "driver.db"))].connection()
    version = writer.execute("PRAGMA data_version").fetchone()[0]

    # Two sessions at once hold two pooled connections; each writes, and one reads its own
    # uncommitted row (the read runs in its transaction, on the writer).
    async with database.sessionmaker() as a, database.sessionmaker() as b:
        await a.execute(text("SELECT 1"))
        await b.execute(text("SELECT 1"))
        raw_a = (await (await a.connection()).get_raw_connection()).driver_connection
        raw_b = (await (await b.connection()).get_raw_connection()).driver_connection
        assert raw_a is not raw_b
        await a.execute(text("INSERT INTO items (name) VALUES ('a')"))
        assert "a" in (await a.scalars(text("SELECT name FROM items"))).all()
        await a.commit()
        await b.execute(text("INSERT INTO items (name) VALUES ('b')"))
        await b.rollback()
        await b.execute(text("INSERT INTO items (name) VALUES ('b2')"))
        await b.commit()

    assert await _names(database) == ["first", "a", "b2"]
    # No other connection committed meanwhile: the writer's page cache stayed valid throughout.
    assert writer.execute("PRAGMA data_version").fetchone()[0] == version
    await database.dispose()
    assert not writers


async def test_a_failed_transaction_rolls_back_and_lets_the_next_writer_in(
    database: Database,
) -> None:
    async with database.unit_of_work() as session:
        await session.execute(text("INSERT INTO items (id, name) VALUES (1, 'first')"))

    async def clash() -> None:
        async with database.unit_of_work() as session:
            await session.execute(text("INSERT INTO items (id, name) VALUES (2, 'undone')"))
            await session.execute(text("INSERT INTO items (id, name) VALUES (1, 'clash')"))

    with pytest.raises(IntegrityError):
        await clash()
    async with database.unit_of_work() as session:
        await asyncio.wait_for(
            session.execute(text("INSERT INTO items (id, name) VALUES (3, 'next')")), 2
        )
    assert await _names(database) == ["first", "next"]
    await database.dispose()


async def test_a_savepoint_undoes_only_its_own_writes(database: Database) -> None:
    async with database.unit_of_work() as session:
        await session.execute(text("INSERT INTO items (name) VALUES ('kept')"))

        async def nested() -> None:
            async with session.begin_nested():
                await session.execute(text("INSERT INTO items (id, name) VALUES (50, 'a')"))
                await session.execute(text("INSERT INTO items (id, name) VALUES (50, 'b')"))

        with pytest.raises(IntegrityError):
            await nested()
        await session.execute(text("INSERT INTO items (name) VALUES ('after')"))
    assert await _names(database) == ["kept", "after"]
    await database.dispose()


async def test_autocommit_writes_are_queued_and_committed_at_once(database: Database) -> None:
    async with database.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("INSERT INTO items (name) VALUES ('auto')"))
        assert await _names(database) == ["auto"]
    await database.dispose()


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(
    database: Database, tmp_path: Path
) -> None:
    async def write() -> None:
        async with database.unit_of_work() as session:
            await session.execute(text("INSERT INTO items (name) VALUES ('this process')"))

    async with lock_held_elsewhere(
        tmp_path / "driver.db", "INSERT INTO items (name) VALUES ('other process')"
    ) as holder:
        writer = asyncio.create_task(write())
        # The loop goes on serving other work while the writer waits for the lock.
        await holder.served_ticks(3)
        assert not writer.done()
        await holder.release()
        await writer

    assert await _names(database) == ["other process", "this process"]
    await database.dispose()


async def test_a_writer_gives_up_with_database_is_locked_after_the_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "slow.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    engine = create_async_engine(f"sqlite+medmesh:///{path}", connect_args={"timeout": 0.5})
    try:
        async with lock_held_elsewhere(path, "INSERT INTO items (name) VALUES ('other process')"):
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"):
                async with engine.begin() as conn:
                    await conn.execute(text("INSERT INTO items (name) VALUES ('late')"))
            # The holder never lets go; the writer gives up, and not before its own timeout.
            assert time.monotonic() - started >= 0.4
    finally:
        await engine.dispose()


def _insert_item(engine: Engine, name: str) -> None:
    """Insert an item named ``name`` in a transaction of the synchronous ``engine``."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO items (name) VALUES (:name)"), {"name": name})


async def test_a_writer_engine_waits_for_another_process_then_writes(
    database: Database, tmp_path: Path
) -> None:
    """A process without an event loop (phi's import workers) waits for the write lock by
    trying ``BEGIN IMMEDIATE`` again, and writes once the other process has committed."""
    engine = sqlite_writer_engine(f"sqlite:///{tmp_path / 'driver.db'}")

    try:
        async with lock_held_elsewhere(
            tmp_path / "driver.db", "INSERT INTO items (name) VALUES ('other process')"
        ) as holder:
            writer = asyncio.create_task(asyncio.to_thread(_insert_item, engine, "worker"))
            await holder.served_ticks(3)
            assert not writer.done()
            await holder.release()
            await writer
    finally:
        engine.dispose()

    assert await _names(database) == ["other process", "worker"]
    await database.dispose()


async def test_a_writer_engine_gives_up_with_database_is_locked_after_its_wait(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "WRITER_WAIT_SECONDS", 0.2)
    engine = sqlite_writer_engine(f"sqlite:///{tmp_path / 'driver.db'}")

    try:
        async with lock_held_elsewhere(
            tmp_path / "driver.db", "INSERT INTO items (name) VALUES ('other process')"
        ):
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                await asyncio.to_thread(_insert_item, engine, "late")
    finally:
        engine.dispose()

    # The holder was killed without committing; the late writer wrote nothing.
    assert await _names(database) == []
    await database.dispose()


async def test_commits_checkpoint_the_wal_without_letting_it_grow(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite.checkpoints, "CHECKPOINT_SECONDS", 0.0)
    path = tmp_path / "driver.db"
    async with database.engine.connect() as conn:
        automatic = await conn.scalar(text("PRAGMA wal_autocheckpoint"))
    rounds, per_round = 30, 20
    commits = 0
    for _ in range(rounds):
        # Commits without a pause (checkpoints run beside them), then the round's checkpoint
        # settles: whatever the machine's speed, the WAL is wholly copied at each round's end,
        # so the next commit restarts it from its beginning.
        for _ in range(per_round):
            async with database.unit_of_work() as session:
                await session.execute(
                    text("INSERT INTO items (name) VALUES (:name)"),
                    {"name": f"{commits:08d}" * 100},
                )
            commits += 1
        await sqlite.checkpoints_settled(str(path))
    _database_bytes, wal_bytes = file_and_wal_bytes(path)
    # The rows reached the database file while every connection stayed open.
    copy = _copy_without_wal(path, tmp_path / "copy.db")
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == commits
    await database.dispose()
    assert automatic == 0  # SQLite's own checkpoint (inside a commit, on the loop) is off
    # The WAL was restarted from its beginning: without, it would hold a page or more of every
    # commit; with, at most the pages of one round.
    assert wal_bytes < commits * 4096 / 4


async def test_another_writers_commits_are_checkpointed_and_the_wal_restarts(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection to the file (phi's import workers) commits without a pause, and the
    service hears of each commit (``others_committed``): the last pass of each checkpoint takes
    SQLite's write lock until no reader is in the WAL, so the next commit restarts it, instead
    of leaving the restart to a writer that never pauses and always begins before the WAL is
    wholly copied."""
    monkeypatch.setattr(sqlite.checkpoints, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(db_engine, "SQLITE_CHECKPOINT_PAGES", 1)  # every commit's WAL is enough
    path = tmp_path / "driver.db"
    engine = sqlite_writer_engine(f"sqlite:///{path}")
    loop = asyncio.get_running_loop()
    commits = 400

    def writes() -> int:
        for n in range(commits):
            _insert_item(engine, f"{n:08d}" * 100)
            loop.call_soon_threadsafe(database.others_committed)
        return wal_restarts(path)

    try:
        _insert_item(engine, "first")
        before = wal_restarts(path)
        restarts = await asyncio.to_thread(writes) - before
        await sqlite.checkpoints_settled(str(path))
    finally:
        engine.dispose()
    async with database.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM items")) == commits + 1
    await database.dispose()
    # Restarted again and again while the writer never paused (a passive last pass: at most
    # once, and the WAL holds a frame or more of every commit).
    assert restarts >= 3


def test_a_restart_waits_for_the_turn_of_the_writers_it_shares_it_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other processes' writers take turns (phi's workers): the last pass of a checkpoint
    after their commits takes its turn too, rather than trying SQLite's lock between theirs."""
    monkeypatch.setattr(sqlite.checkpoints, "LAST_PASS_WAIT_SECONDS", 30.0)
    path = tmp_path / "turns.db"
    engine = sqlite_writer_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE items (name TEXT)"))
        _insert_item(engine, "one")
    finally:
        engine.dispose()
    turn = multiprocessing.get_context("fork").Lock()

    def restart() -> str:
        return f"restarted: {sqlite.checkpoints.restart(str(path), turn)}"

    assert in_turn_held_here(turn, restart) == ["turn given back", "restarted: True"]
    assert turn.acquire(block=False)
    assert sqlite.frames_to_copy(str(path)) == 0


def test_the_frames_a_checkpoint_has_yet_to_copy_are_read_from_the_wal_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "frames.db"
    assert sqlite.frames_to_copy(str(path)) == 0  # no WAL-index yet
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE t (x)")
        for _ in range(5):
            conn.execute("INSERT INTO t VALUES (randomblob(3000))")
        # The WAL file: a 32-byte header, then each frame's 24-byte header and page.
        frames = (Path(f"{path}-wal").stat().st_size - 32) // (24 + 4096)
        assert sqlite.frames_to_copy(str(path)) == frames > 5
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        assert sqlite.frames_to_copy(str(path)) == 0
        # The WAL file keeps its size; the next commit restarts it from its beginning.
        conn.execute("INSERT INTO t VALUES (1)")
        assert sqlite.frames_to_copy(str(path)) == 1


def _wal_index_in_use_elsewhere(path: Path) -> bool:
    """Whether another process than this one's child holds SQLite's lock on the WAL-index that
    says the index is in use (its "DMS" byte, 128: https://sqlite.org/walformat.html), asked
    from a child process with a non-blocking exclusive lock on that byte."""
    script = (
        "import fcntl, sys\n"
        f"index = open({str(path) + '-shm'!r}, 'r+b')\n"
        "try:\n"
        "    fcntl.lockf(index, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)\n"
        "except OSError:\n"
        "    sys.exit(3)\n"
    )
    return subprocess.run([sys.executable, "-c", script], check=False).returncode == 3


def test_reading_the_wal_index_keeps_this_process_s_hold_on_it(tmp_path: Path) -> None:
    # POSIX locks belong to a process and a file: closing any descriptor of the file drops
    # every lock the process holds on it. A read of the WAL-index that closed its descriptor
    # let another process take the index for unused and reset it under this one's mapping,
    # which then died of SIGBUS (https://sqlite.org/howtocorrupt.html, 2.2.1).
    path = tmp_path / "held.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert _wal_index_in_use_elsewhere(path)
        assert [sqlite.frames_to_copy(str(path)) for _ in range(3)] == [3, 3, 3]
        assert _wal_index_in_use_elsewhere(path)
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]


def wal_restarts(path: Path) -> int:
    """How many times the WAL of ``path`` was started again from its beginning: its header's
    checkpoint sequence number (https://sqlite.org/fileformat.html#walformat)."""
    return int.from_bytes(Path(f"{path}-wal").read_bytes()[12:16], "big")


def wal_frames(path: Path) -> int:
    """How many frames the WAL of ``path`` holds (a checkpoint from a connection of its own
    that copies what it can and answers the count)."""
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


async def test_a_disposed_database_leaves_its_file_whole(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite.checkpoints, "CHECKPOINT_SECONDS", 0.0)
    for n in range(20):  # commits that start checkpoints on a worker thread
        async with database.unit_of_work() as session:
            await session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": str(n)})
    await database.dispose()
    # The file alone (copied without its WAL, as a template or a naive backup would be) holds it all.
    copy = _copy_without_wal(tmp_path / "driver.db", tmp_path / "copy.db")
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 20


def _copy_without_wal(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target
