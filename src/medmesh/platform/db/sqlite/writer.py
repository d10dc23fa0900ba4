"""The writer queue: one write transaction at a time per file in this process, all on one connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from medmesh.platform.db.sqlite.files import connect

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "SAVEPOINT")
_kind_cache: dict[str, bool] = {}
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def is_write(statement: str) -> bool:
    kind = _kind_cache.get(statement)
    if kind is None:
        kind = statement.lstrip().upper().startswith(_WRITES)
        if len(_kind_cache) < 4096:
            _kind_cache[statement] = kind
    return kind


class SharedTurn(Protocol):
    """A lock that writers in several processes take before SQLite's write lock (a
    ``multiprocessing`` lock made before they were forked): the next waiter gets it as soon as
    it is released, where waiters polling SQLite's lock find it free only at their next try."""

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool: ...

    def release(self) -> None: ...


@contextmanager
def in_turn(turn: SharedTurn | None, wait_seconds: float) -> Iterator[None]:
    """Hold ``turn`` meanwhile, waiting for it up to ``wait_seconds`` (a holder killed while
    holding it never gives it back: past that wait, go on without it); nothing without a turn."""
    held = turn is not None and turn.acquire(timeout=wait_seconds)
    try:
        yield
    finally:
        if held:
            assert turn is not None
            turn.release()


def write_queue(path: str) -> asyncio.Lock:
    """The writer queue of ``path`` for the running loop (each loop gets its own lock)."""
    per_loop = _gates.setdefault(asyncio.get_running_loop(), {})
    lock = per_loop.get(path)
    if lock is None:
        lock = per_loop[path] = asyncio.Lock()
    return lock


def _began(conn: sqlite3.Connection, deadline: float, wait: float) -> bool:
    """Try ``BEGIN IMMEDIATE`` on ``conn``: True once begun, False while another connection
    holds the file's write lock and a try after ``wait`` more seconds still fits before
    ``deadline``; otherwise SQLite's error (``database is locked``) is raised."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) or time.monotonic() + wait > deadline:
            raise
    return False


async def begin_immediate(conn: sqlite3.Connection, wait_seconds: float) -> None:
    """``BEGIN IMMEDIATE`` on ``conn``; while another process holds the file's write lock, wait
    for it with asyncio sleeps (1 ms doubling to 50 ms), never holding the loop, up to
    ``wait_seconds``, then raise SQLite's ``database is locked``."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.001
    while not _began(conn, deadline, delay):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def begin_immediate_blocking(conn: sqlite3.Connection, wait_seconds: float, poll: float) -> None:
    """``BEGIN IMMEDIATE`` on ``conn`` (whose busy timeout is 0), for a process without an event
    loop: while another connection holds the file's write lock, try again every ``poll``
    seconds, up to ``wait_seconds``, then raise SQLite's ``database is locked``. SQLite's own
    busy handler backs off to sleeps of 25 to 100 ms, so that a writer waiting for another's
    short transaction would start well after the lock is free."""
    deadline = time.monotonic() + wait_seconds
    while not _began(conn, deadline, poll):
        time.sleep(poll)


class Writer:
    """The one connection that runs the write transactions of an engine's connections to a file.

    SQLite keeps a page cache per connection and empties it when the connection begins a
    transaction after another connection committed. With writes spread over the pool's
    connections, every write transaction thus began cold: each B-tree page it walked came back
    from the WAL through a ``pread``. Writers take turns anyway (the writer queue), so their
    transactions all run on this connection, whose cache stays valid from one to the next; a
    pooled connection switches to it when it joins the queue and back when it leaves.
    """

    __slots__ = ("_checkpoints", "_conn", "_database", "_kw")

    def __init__(self, database: str, kw: dict[str, Any], *, checkpoints: bool) -> None:
        self._database = database
        self._kw = dict(kw)
        self._checkpoints = checkpoints
        self._conn: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self._database, self._kw, checkpoints=self._checkpoints)
            # A savepoint's journal (the pages it changed, as they were) stays in memory: past
            # 64 KiB SQLite spills it to a temporary file, which a group commit's savepoints
            # (platform.db.sqlite.groups) wrote on every payment.
            conn.execute("PRAGMA temp_store=MEMORY")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
