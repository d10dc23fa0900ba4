"""SQLite for asyncio on the event loop's own thread, with an in-process writer queue.

SQLAlchemy's ``aiosqlite`` driver gives every connection a thread and crosses to it four
times per statement (cursor, execute, fetch, close), each crossing far more costly than an
indexed statement (see docs/decisions/0001-sqlite-on-the-event-loop.md). This driver,
``sqlite+medmesh`` and the embedded default, runs each statement directly on the loop instead:

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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.engine.url import URL
from sqlalchemy.util.concurrency import await_only

from medmesh.platform.db.sqlite.checkpoints import checkpoint_soon
from medmesh.platform.db.sqlite.files import connect, file_identity
from medmesh.platform.db.sqlite.writer import Writer, begin_immediate, is_write, write_queue


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
        write = is_write(operation) and not self.raw.in_transaction
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
        lock = write_queue(self._key or "")
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
        #: How long a writer of each file waits for its turn (the connections' ``timeout``).
        self.timeouts: dict[str, float] = {}
        #: The key of each path :meth:`writer_of` was asked about.
        self._keys: dict[str, str] = {}

    def connect(self, database: str, **kw: Any) -> Connection:
        kw.pop("async_fallback", None)
        kw.pop("async_creator_fn", None)
        timeout = float(kw.pop("timeout", 10.0))
        kw["isolation_level"] = None
        kw["check_same_thread"] = False
        uri = bool(kw.get("uri"))
        key = file_identity(database, uri)
        checkpoints = not uri and bool(key)
        # Opened in a coroutine: SQLAlchemy checks that connecting an async driver awaits.
        raw: sqlite3.Connection = await_only(_open(database, kw, checkpoints=checkpoints))
        writer = None
        if key is not None:
            writer = self.writers.get(key)
            if writer is None:
                writer = self.writers[key] = Writer(database, kw, checkpoints=checkpoints)
                self.timeouts[key] = timeout
        return Connection(raw, key, timeout, key if not uri else None, writer)

    def writer_of(self, database: str) -> tuple[str, float] | None:
        """(file key, timeout) of the writer connection of the file ``database`` (a path, not
        a URI) once a connection opened it; None before (or for an in-memory database)."""
        key = self._keys.get(database)
        if key is None:
            key = file_identity(database, False)  # a path resolved: a few system calls
            if key is None:
                return None
            self._keys[database] = key
        if key not in self.writers:
            return None
        return key, self.timeouts[key]

    def close_writers(self) -> None:
        """Close the writer connections (when the engine is disposed)."""
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
        self.timeouts.clear()


async def _open(database: str, kw: dict[str, Any], *, checkpoints: bool) -> sqlite3.Connection:
    return connect(database, kw, checkpoints=checkpoints)


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


dialect = SQLiteDialect_medmesh
registry.register("sqlite.medmesh", __name__, "SQLiteDialect_medmesh")
