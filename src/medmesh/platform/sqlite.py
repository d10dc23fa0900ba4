"""SQLite for asyncio on the event loop's own thread, with an in-process writer queue.

SQLAlchemy's ``aiosqlite`` driver gives every connection a thread and crosses to it four
times per statement (cursor, execute, fetch, close): about 250 us each on a small VM, far
more than the statement (a primary-key read takes about 20 us). This driver, ``sqlite+medmesh``
and the embedded default, runs each statement directly on the loop instead:

- Reads never wait: in WAL mode readers see the last commit and never take a lock.
- Writers queue in process. A connection's first write of a transaction (``INSERT``,
  ``UPDATE``, ``DELETE``, DDL, ``SAVEPOINT``) waits, without blocking the loop, on an asyncio
  lock shared by every connection of this process to the same file, then opens the
  transaction with ``BEGIN IMMEDIATE``; ``COMMIT``/``ROLLBACK``/close releases it. So two
  writers of this process never meet inside SQLite, and nothing busy-waits: the lock wakes
  the next writer in arrival order the moment the previous one commits. The write
  transactions all run on one connection per file and engine (:class:`Writer`), whose page
  cache therefore stays valid from one transaction to the next.
- Another process holding the file's write lock (a CLI command, a job worker) is waited for
  with asyncio sleeps between attempts of ``BEGIN IMMEDIATE``, up to the connect timeout
  (10 s), then ``database is locked`` as SQLite itself would say. SQLite's own busy handler
  is kept short (``BUSY_MS``) so it never holds the loop for long.

Transactions otherwise behave as the standard library's legacy mode, which the pysqlite
dialect expects: reads outside a write transaction each see the latest commit, and a
transaction begins with its first write.

The price: a statement blocks the loop while SQLite runs it. Every statement of the services
is indexed and short; a scan over many rows (``_total=accurate`` on a broad search) holds the
loop for its duration, as it would hold the one core either way.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.engine.url import URL
from sqlalchemy.util.concurrency import await_only

from medmesh.platform.logging import get_logger

#: SQLite's own busy handler (ms): bounded, because it runs on the event loop.
BUSY_MS = 20
#: Page cache per connection (SQLite's default is 2 MiB): index B-trees of a large store (blind
#: index tokens are random, so inserts touch pages all over them) stay in memory.
CACHE_KIB = 16 * 1024
#: Reads go through a shared memory map instead of a read() per page.
MMAP_BYTES = 256 * 1024 * 1024
#: Every connection's settings, whatever the driver (WAL is a setting of the file).
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA cache_size=-{CACHE_KIB}",
    f"PRAGMA mmap_size={MMAP_BYTES}",
)
#: Least time between two checkpoints of a file (see :func:`checkpoint_soon`): a page that many
#: commits wrote meanwhile is copied once (0.1 s gave 310-320 FHIR creates/s, 0.5 s 370-440).
CHECKPOINT_SECONDS = 0.5
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "SAVEPOINT")
_kind_cache: dict[str, bool] = {}
_log = get_logger("medmesh.platform.sqlite")
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _is_write(statement: str) -> bool:
    kind = _kind_cache.get(statement)
    if kind is None:
        kind = statement.lstrip().upper().startswith(_WRITES)
        if len(_kind_cache) < 4096:
            _kind_cache[statement] = kind
    return kind


def _gate(path: str) -> asyncio.Lock:
    """The writer queue of ``path`` for the running loop (each loop gets its own lock)."""
    per_loop = _gates.setdefault(asyncio.get_running_loop(), {})
    lock = per_loop.get(path)
    if lock is None:
        lock = per_loop[path] = asyncio.Lock()
    return lock


class _Checkpoints:
    """The checkpointing of one loop's files: when each last started, which one runs."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.running: dict[str, asyncio.Task[None]] = {}


_checkpointing: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Checkpoints] = (
    weakref.WeakKeyDictionary()
)


def checkpoint_soon(path: str) -> None:
    """After a commit to ``path``: checkpoint its WAL, at most every ``CHECKPOINT_SECONDS`` and
    one at a time.

    SQLite's own automatic checkpoint (off on this driver's connections) runs inside the commit
    that crosses 1,000 WAL pages: it copies them into the database file and syncs twice, on the
    loop's thread. Measured on FHIR creates: one commit in twelve took 10 ms on average (66 ms at
    worst), 40 % of the loop's time. Here the bulk of the copy runs on a worker thread (a
    ``PASSIVE`` checkpoint blocks neither readers nor writers), then a last pass on the loop,
    between two of this process's write transactions, copies what was committed meanwhile: the
    WAL is then wholly copied, so the next writer restarts it from its beginning (a checkpoint
    that never catches up with steady writes would let it grow without end).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not on a loop: nothing of the services
        return
    state = _checkpointing.get(loop)
    if state is None:
        state = _checkpointing[loop] = _Checkpoints()
    now = time.monotonic()
    if path in state.running or now - state.started.get(path, float("-inf")) < CHECKPOINT_SECONDS:
        return
    state.started[path] = now
    task = state.running[path] = loop.create_task(_checkpoint(path))

    def done(_: Any) -> None:
        state.running.pop(path, None)
        if not task.cancelled() and task.exception() is not None:
            # Committed data is safe in the WAL, which grows until a later checkpoint succeeds.
            _log.warning("sqlite_checkpoint_failed", error=type(task.exception()).__name__)

    task.add_done_callback(done)


#: The last pass runs on the loop once a pass on the thread found fewer new WAL frames.
LAST_PASS_FRAMES = 64


async def checkpoints_settled(path: str) -> None:
    """Wait until no checkpoint of ``path`` runs on this loop (call it before the engine's last
    connection closes: SQLite copies the whole WAL into the database file when its last
    connection closes, which it cannot while a checkpoint holds a connection of its own)."""
    state = _checkpointing.get(asyncio.get_running_loop())
    task = state.running.get(path) if state is not None else None
    if task is not None:
        await asyncio.gather(task, return_exceptions=True)


async def _checkpoint(path: str) -> None:
    loop = asyncio.get_running_loop()
    previous = 0
    for _ in range(4):  # each pass copies what was committed during the one before
        frames = await loop.run_in_executor(None, checkpoint, path)
        if frames - previous < LAST_PASS_FRAMES:
            break
        previous = frames
    async with _gate(path):
        checkpoint(path)


def checkpoint(path: str) -> int:
    """Copy the WAL of ``path`` into the database file, as far as readers allow (blocking);
    returns the number of frames the WAL held."""
    conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    try:
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)
    finally:
        conn.close()


def file_key(database: str) -> str:
    """The name under which this driver knows the database file ``database``."""
    return str(Path(database).resolve())


def _file_key(database: str, uri: bool) -> str | None:
    """The identity of a database file, or None for private in-memory databases."""
    if database in ("", ":memory:") or (uri and "mode=memory" in database):
        return None
    if uri:
        return database
    return file_key(database)


class Cursor:
    """A DBAPI cursor whose statements run at once, with their rows fetched eagerly."""

    __slots__ = ("_conn", "_pos", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    server_side = False

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._rows: list[Any] = []
        self._pos = 0
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> None:
        # Through a coroutine (one greenlet switch): SQLAlchemy's AsyncConnection.execute
        # checks that the driver awaited, and a writer may have to wait for its turn.
        await_only(self._conn.run(self, operation, () if parameters is None else parameters))

    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any]]) -> None:
        await_only(self._conn.run(self, operation, seq_of_parameters, many=True))

    def take(self, cursor: sqlite3.Cursor) -> None:
        self.description = cursor.description
        if self.description:
            self._rows = cursor.fetchall()
            self._pos = 0
            self.rowcount = self.lastrowid = -1
        else:
            self._rows = []
            self.rowcount = cursor.rowcount
            self.lastrowid = cursor.lastrowid
        cursor.close()

    def setinputsizes(self, *inputsizes: Any) -> None:
        pass

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio results call this; the rows are already fetched."""

    def fetchone(self) -> Any:
        if self._pos < len(self._rows):
            row = self._rows[self._pos]
            self._pos += 1
            return row
        return None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        end = self._pos + (self.arraysize if size is None else size)
        rows = self._rows[self._pos : end]
        self._pos += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = self._rows[self._pos :] if self._pos else self._rows
        self._rows, self._pos = [], 0
        return rows

    def close(self) -> None:
        self._rows, self._pos = [], 0


async def begin_immediate(conn: sqlite3.Connection, wait_seconds: float) -> None:
    """``BEGIN IMMEDIATE`` on ``conn``; while another process holds the file's write lock, wait
    for it with asyncio sleeps (1 ms doubling to 50 ms), never holding the loop, up to
    ``wait_seconds``, then raise SQLite's ``database is locked``."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class Connection(AdaptedConnection):
    """A DBAPI connection over :mod:`sqlite3` in autocommit mode, transactions begun by writes."""

    __slots__ = ("_autocommit", "_file", "_holds", "_key", "_own", "_timeout", "_writer", "raw")

    def __init__(
        self,
        raw: sqlite3.Connection,
        key: str | None,
        timeout: float,
        file: str | None = None,
        writer: Writer | None = None,
    ) -> None:
        #: The connection statements run on: this connection's own, or during a write
        #: transaction the file's writer (see :class:`Writer`).
        self.raw = raw
        self._own = raw
        self._writer = writer
        self._connection = raw  # type: ignore[assignment]  # AdaptedConnection's driver connection
        self._key = key
        #: The database file this driver checkpoints (None: in memory, or a URI).
        self._file = file
        self._timeout = timeout
        self._holds: asyncio.Lock | None = None
        self._autocommit = False

    # SQLAlchemy sets ``isolation_level = None`` for its AUTOCOMMIT execution option.
    @property
    def isolation_level(self) -> str | None:
        return None if self._autocommit else ""

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._autocommit = value is None

    @property
    def autocommit(self) -> bool:
        return self._autocommit

    def cursor(self, server_side: bool = False) -> Cursor:
        return Cursor(self)

    async def run(
        self, cursor: Cursor, operation: str, parameters: Any, many: bool = False
    ) -> None:
        """Execute one statement for ``cursor``; a write first joins the writer queue."""
        write = _is_write(operation) and not self.raw.in_transaction
        if write:
            await self._start_write()
        try:
            raw = self.raw
            result = (
                raw.executemany(operation, parameters)
                if many
                else raw.execute(operation, parameters)
            )
            cursor.take(result)
        finally:
            if write and self._autocommit:
                self._release()

    async def _start_write(self) -> None:
        """Join the writer queue and open the write transaction (unless in autocommit mode)."""
        if self._key is not None and self._holds is None:
            await self._acquire()
            if self._writer is not None:
                self.raw = self._writer.connection()
        if not self._autocommit:
            try:
                await self._begin_immediate()
            except BaseException:
                self._release()
                raise

    async def _acquire(self) -> None:
        lock = _gate(self._key or "")
        try:
            async with asyncio.timeout(self._timeout):  # no extra task, unlike wait_for
                await lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holds = lock

    async def _begin_immediate(self) -> None:
        await begin_immediate(self.raw, self._timeout)

    def _release(self) -> None:
        self.raw = self._own
        lock, self._holds = self._holds, None
        if lock is not None and lock.locked():
            lock.release()

    def commit(self) -> None:
        wrote = self.raw.in_transaction
        try:
            if wrote:
                self.raw.execute("COMMIT")
        finally:
            if not self.raw.in_transaction:
                self._release()
        if wrote and self._file is not None:
            checkpoint_soon(self._file)

    def rollback(self) -> None:
        try:
            if self.raw.in_transaction:
                self.raw.execute("ROLLBACK")
        finally:
            self._release()

    def close(self) -> None:
        try:
            self.rollback()
        finally:
            self.raw.close()

    def create_function(self, *args: Any, **kw: Any) -> None:
        self.raw.create_function(*args, **kw)


class DBAPI:
    """The DBAPI module SQLAlchemy sees: :mod:`sqlite3`'s names, with :class:`Connection`."""

    paramstyle = "qmark"

    def __init__(self) -> None:
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "InterfaceError",
            "InternalError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "DataError",
            "Warning",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))
        self.sqlite = sqlite3
        #: The writer connection of each file this engine opened (see :class:`Writer`).
        self.writers: dict[str, Writer] = {}

    def connect(self, database: str, **kw: Any) -> Connection:
        kw.pop("async_fallback", None)
        kw.pop("async_creator_fn", None)
        timeout = float(kw.pop("timeout", 10.0))
        kw["isolation_level"] = None
        kw["check_same_thread"] = False
        uri = bool(kw.get("uri"))
        key = _file_key(database, uri)
        checkpoints = not uri and bool(key)
        # Opened in a coroutine: SQLAlchemy checks that connecting an async driver awaits.
        raw: sqlite3.Connection = await_only(_open(database, kw, checkpoints=checkpoints))
        writer = None
        if key is not None:
            writer = self.writers.get(key)
            if writer is None:
                writer = self.writers[key] = Writer(database, kw, checkpoints=checkpoints)
        return Connection(raw, key, timeout, key if not uri else None, writer)

    def close_writers(self) -> None:
        """Close the writer connections (when the engine is disposed)."""
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


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
            self._conn = _connect(self._database, self._kw, checkpoints=self._checkpoints)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


async def _open(database: str, kw: dict[str, Any], *, checkpoints: bool) -> sqlite3.Connection:
    return _connect(database, kw, checkpoints=checkpoints)


def _connect(database: str, kw: dict[str, Any], *, checkpoints: bool) -> sqlite3.Connection:
    connection: sqlite3.Connection = sqlite3.connect(database, timeout=BUSY_MS / 1000, **kw)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    if checkpoints:
        # Commits never checkpoint on the loop: see checkpoint_soon.
        connection.execute("PRAGMA wal_autocheckpoint=0")
    return connection


class SQLiteDialect_medmesh(SQLiteDialect_pysqlite):
    driver = "medmesh"
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = False
    has_terminate = False

    @classmethod
    def import_dbapi(cls) -> Any:
        return DBAPI()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection.raw


def open_reader(database: str, *, cache_kib: int, mmap_bytes: int) -> sqlite3.Connection:
    """A connection that only reads (``query_only``), in autocommit mode: each statement is a read
    transaction of its own and sees the last commit; in WAL mode it never waits for a writer."""
    reader = sqlite3.connect(
        database, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False
    )
    for pragma in ("query_only=1", f"cache_size=-{cache_kib}", f"mmap_size={mmap_bytes}"):
        reader.execute(f"PRAGMA {pragma}")
    return reader


dialect = SQLiteDialect_medmesh
registry.register("sqlite.medmesh", __name__, "SQLiteDialect_medmesh")
