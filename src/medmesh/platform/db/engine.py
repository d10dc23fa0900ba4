"""Databases: one SQLAlchemy 2 async engine per service, a request-scoped session,
and Alembic migrations per service.

SQLite (WAL) at ``var/<service>.db`` is the embedded default; PostgreSQL is used
when the service's ``DATABASE_URL`` says ``postgresql+asyncpg://``. The session
dependency commits when the request succeeds and rolls back when it fails:
services never commit (they ``flush()`` when they need an id early).
"""

from __future__ import annotations

import asyncio
import select
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine as sqlalchemy_create_engine
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from medmesh.platform.config import DATABASE_POOL_SIZE
from medmesh.platform.db import sqlite
from medmesh.platform.db.types import json_column_text


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


#: With a driver other than the default one, the WAL is copied into the database inside the commit
#: that finds it holding this many pages (SQLite's default is 1,000, 4 MiB). A FHIR transaction
#: alone dirties more than that, so the default checkpointed on almost every commit; at 40 MiB the
#: pages that consecutive commits share (B-tree inner pages, the right edge of time-ordered keys)
#: are copied once per checkpoint instead of once per commit.
SQLITE_CHECKPOINT_PAGES = 10_000
#: A writer engine's own checkpoint: only when the WAL holds this many pages (160 MiB), which
#: the service's checkpoints after the writers' commits keep it from reaching.
WRITER_CHECKPOINT_PAGES = 4 * SQLITE_CHECKPOINT_PAGES


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    if isinstance(dbapi_connection, sqlite.Connection):
        return  # the default driver sets its connections up itself (platform.db.sqlite.PRAGMAS)
    cursor = dbapi_connection.cursor()
    for pragma in sqlite.PRAGMAS:
        cursor.execute(pragma)
    # A driver with a thread per connection may block in SQLite's busy handler; the default
    # driver queues its writers instead and keeps that handler short.
    cursor.execute("PRAGMA busy_timeout=10000")
    # The default driver checkpoints off the loop (platform.db.sqlite.checkpoint_soon); others
    # checkpoint in their commits, less often than SQLite's default.
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.close()


#: How JSON columns are encoded and decoded (orjson: several times the standard library's speed).
JSON_CODEC: dict[str, Any] = {
    "json_serializer": json_column_text,
    "json_deserializer": orjson.loads,
}


def create_engine(
    url: str, *, pool_size: int = DATABASE_POOL_SIZE, echo: bool = False
) -> AsyncEngine:
    """An async engine: SQLite files get WAL and a busy timeout; PostgreSQL a pool."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 10}, **JSON_CODEC)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, **JSON_CODEC
    )
    _check_liveness_on_checkout(engine.sync_engine)
    return engine


def sqlite_writer_engine(url: str) -> Engine:
    """A synchronous engine on the SQLite file of ``url`` for a process that writes it beside
    a service (phi's import workers): every connection's settings, SQLite's checkpoint every
    :data:`SQLITE_CHECKPOINT_PAGES` pages, and ``BEGIN IMMEDIATE`` for each transaction (the
    write lock is taken before the first read, so what a transaction reads stays true until it
    commits), waiting for another writer up to :data:`WRITER_WAIT_SECONDS` by trying again every
    :data:`WRITER_POLL_SECONDS`."""
    database = make_url(url).database
    if not is_sqlite(url) or not database or database == ":memory:":
        raise ValueError("a writer engine needs a SQLite file")
    engine = sqlalchemy_create_engine(f"sqlite:///{database}", **JSON_CODEC)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        # Past BEGIN IMMEDIATE nothing in a write transaction waits for a lock.
        dbapi_connection.execute("PRAGMA busy_timeout=0")
        # The service checkpoints the WAL after the commits it hears of (Database.
        # others_committed); a writer's own checkpoint is the backstop.
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        dbapi_connection.isolation_level = None  # the transactions are begun below

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        sqlite.begin_immediate_blocking(
            connection.connection.dbapi_connection, WRITER_WAIT_SECONDS, WRITER_POLL_SECONDS
        )

    return engine


#: How long a writer engine's transaction waits for another writer, and how often it looks.
WRITER_WAIT_SECONDS = 10.0
WRITER_POLL_SECONDS = 0.0005


#: A pooled server connection idle at least this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 2.0


def _check_liveness_on_checkout(engine: Engine) -> None:
    """Hand out only live connections, without a round trip for a connection just used.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout; on asyncpg that ping is
    ``BEGIN``, ``;`` and ``ROLLBACK``: three round trips before a one-statement read. Here a
    connection the server or the network closed (a restart, ``pg_terminate_backend``, an idle
    timeout: asyncpg sees the socket close) is discarded without asking, and one idle for
    :data:`PING_AFTER_IDLE_SECONDS` or longer (where a silent drop hides) is pinged. Raising
    ``DisconnectionError`` makes the pool drop the connection and check out another (a new one
    if need be), as with ``pool_pre_ping``.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _idle_from(_: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _live(dbapi_connection: Any, record: ConnectionPoolEntry, _: PoolProxiedConnection) -> None:
        is_closed = getattr(record.driver_connection, "is_closed", None)
        if is_closed is not None and is_closed():
            raise DisconnectionError("the server closed the connection")
        if _sent_unasked(record.driver_connection):
            raise DisconnectionError("the server is ending the connection")
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # the driver's own error for a dead connection
            raise DisconnectionError("the connection did not answer a ping") from error


class FreshConnectionSession(Session):
    """A session whose transaction's first statement gets a second, fresh connection when the
    first one turns out dead.

    The liveness check on checkout sees a connection the server ended only once the event loop
    has read the socket's end; a checkout in between gets a connection that fails at
    ``BEGIN`` (asyncpg sends it with the first statement). Nothing of the transaction ran, so
    the statement is run once more on another connection. A failure after a statement of the
    transaction ran is never retried: what ran is lost with the connection.
    """

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        # Also the path of scalars() and get().
        return self._first_statement_retried(super().execute, args, kwargs)

    def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self._first_statement_retried(super().scalar, args, kwargs)

    def _first_statement_retried(
        self, run: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self.in_transaction():
            return run(*args, **kwargs)
        try:
            return run(*args, **kwargs)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            self.rollback()  # gives the dead connection back to be discarded
            return run(*args, **kwargs)


def _sent_unasked(driver_connection: Any) -> bool:
    """True when an idle connection's socket has bytes (or its end) the event loop has not read
    yet: a server ending a connection (``pg_terminate_backend``, a restart) sends an error and
    closes, and ``is_closed()`` turns true only once the loop reads that. One ``poll`` call;
    nothing is read."""
    transport = getattr(driver_connection, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def create_unpooled_engine(url: str) -> AsyncEngine:
    """An engine without a pool, for one-off commands (migrations, CLI)."""
    if is_sqlite(url):
        return create_engine(url)
    return create_async_engine(url, poolclass=NullPool, **JSON_CODEC)


class Database:
    """A service's engine and session factory."""

    def __init__(self, url: str, *, pool_size: int = DATABASE_POOL_SIZE) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=FreshConnectionSession
        )
        self.is_sqlite = is_sqlite(url)
        # SQLite allows one writer; serialising writers in process avoids busy errors.
        self.write_lock = asyncio.Lock()
        parsed = make_url(url)
        #: The file :class:`OneRowRead` reads directly (the embedded driver on a file only).
        self._reader_path = (
            parsed.database
            if parsed.get_driver_name() == "medmesh"
            and parsed.database not in (None, "", ":memory:")
            and not parsed.query
            else None
        )
        self._reader: sqlite3.Connection | None = None
        #: The SQLite file (None: another database, or SQLite in memory).
        self._file = (
            sqlite.file_identity(parsed.database or "", uri=False)
            if self.is_sqlite and not parsed.query
            else None
        )

    def committed_reader(self) -> sqlite3.Connection | None:
        """The read-only SQLite connection of :class:`OneRowRead`, or None on other databases."""
        if self._reader is None and self._reader_path is not None:
            self._reader = sqlite.open_reader(
                self._reader_path, cache_kib=sqlite.CACHE_KIB, mmap_bytes=sqlite.MMAP_BYTES
            )
        return self._reader

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on error (for workers and CLI)."""
        async with self.sessionmaker() as session:
            try:
                yield session
                # A request that touched no table has nothing to commit (and skipping the
                # empty commit saves a greenlet hop on every such request).
                if session.in_transaction():
                    await session.commit()
            except BaseException:
                if session.in_transaction():
                    await session.rollback()
                raise

    def others_committed(self, turn: sqlite.SharedTurn | None = None) -> None:
        """Another process committed to this SQLite file (phi's import workers): once its WAL
        holds :data:`SQLITE_CHECKPOINT_PAGES` pages not yet copied, it is checkpointed and
        restarted soon, as after this process's own commits, in the ``turn`` those writers
        take (nothing on other databases)."""
        if self._file is None:
            return
        if sqlite.frames_to_copy(self._file) >= SQLITE_CHECKPOINT_PAGES:
            sqlite.checkpoint_soon(self._file, others=True, turn=turn)

    async def ping(self) -> None:
        """Raise when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await dispose_engine(self.engine)


async def dispose_engine(engine: AsyncEngine) -> None:
    """Close ``engine``'s connections; a SQLite file of the embedded driver is left whole (its
    WAL copied into it, as SQLite does when the last connection closes)."""
    url = engine.url
    if url.get_driver_name() == "medmesh" and url.database not in (None, "", ":memory:"):
        await sqlite.checkpoints_settled(sqlite.file_key(url.database or ""))
    await engine.dispose()
    if isinstance(engine.dialect.dbapi, sqlite.DBAPI):
        engine.dialect.dbapi.close_writers()
