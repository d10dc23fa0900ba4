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
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medmesh.platform import sqlite
from medmesh.platform.config import DATABASE_POOL_SIZE

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the platform's own tables (audit log, outbox)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_metadata() -> MetaData:
    """A MetaData with the project's constraint naming convention, for a service's tables."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: medmesh stores timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


#: With a driver other than the default one, the WAL is copied into the database inside the commit
#: that finds it holding this many pages (SQLite's default is 1,000, 4 MiB). A FHIR transaction
#: alone dirties more than that, so the default checkpointed on almost every commit; at 40 MiB the
#: pages that consecutive commits share (B-tree inner pages, the right edge of time-ordered keys)
#: are copied once per checkpoint instead of once per commit.
SQLITE_CHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    if isinstance(dbapi_connection, sqlite.Connection):
        return  # the default driver sets its connections up itself (platform.sqlite.PRAGMAS)
    cursor = dbapi_connection.cursor()
    for pragma in sqlite.PRAGMAS:
        cursor.execute(pragma)
    # A driver with a thread per connection may block in SQLite's busy handler; the default
    # driver queues its writers instead and keeps that handler short.
    cursor.execute("PRAGMA busy_timeout=10000")
    # The default driver checkpoints off the loop (platform.sqlite.checkpoint_soon); others
    # checkpoint in their commits, less often than SQLite's default.
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.close()


def create_engine(
    url: str, *, pool_size: int = DATABASE_POOL_SIZE, echo: bool = False
) -> AsyncEngine:
    """An async engine: SQLite files get WAL and a busy timeout; PostgreSQL a pool."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
    _check_liveness_on_checkout(engine.sync_engine)
    return engine


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
    return create_async_engine(url, poolclass=NullPool)


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


class RequestSession:
    """The session of one request, created on first use (requests that touch no table pay nothing)."""

    __slots__ = ("database", "session")

    def __init__(self, database: Database) -> None:
        self.database = database
        self.session: AsyncSession | None = None

    def get(self) -> AsyncSession:
        if self.session is None:
            self.session = self.database.sessionmaker()
        return self.session

    async def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and close; idempotent."""
        session, self.session = self.session, None
        if session is None or not session.in_transaction():
            # Never used (or already finished): it holds no connection and no objects, and
            # closing it would still cost a trip through SQLAlchemy's greenlet bridge.
            return

        def end(sync_session: Session) -> None:
            try:
                if commit:
                    sync_session.commit()
                else:
                    sync_session.rollback()
            finally:
                sync_session.close()

        # One trip through SQLAlchemy's greenlet bridge for both (AsyncSession's commit and
        # close are a trip each, and this runs once per request that used the database).
        await session.run_sync(end)


class SessionMiddleware:
    """Commits the request's session just before the response starts, or rolls it back.

    A response below 400 commits; a 4xx/5xx (an expected failure rendered by an error handler)
    or an exception rolls back. The commit happens before the first byte is sent, so a commit
    that fails becomes an error response (the outer error middleware renders it), never a
    success the client believes. A pure ASGI middleware rather than a ``yield`` dependency:
    FastAPI's generator dependencies cost about 150 us per request (measured), more than the
    rest of a typical endpoint.
    """

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder = RequestSession(self.database)
        scope.setdefault("state", {})[_STATE_KEY] = holder

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and holder.session is not None:
                await holder.finish(commit=message["status"] < 400)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            await holder.finish(commit=False)


_STATE_KEY = "medmesh_session"


def session_for(request: Request) -> AsyncSession:
    """The request's session: committed before a successful response is sent, rolled back on an
    error response or exception (see :class:`SessionMiddleware`)."""
    holder: RequestSession | None = request.scope.get("state", {}).get(_STATE_KEY)
    if holder is None:
        raise RuntimeError("SessionMiddleware is not installed on this app")
    return holder.get()


#: Opens (on first call) and returns the request's session; for hot paths that may not need one.
SessionSource = Callable[[], AsyncSession]


def session_source(request: Request) -> SessionSource:
    """A callable giving the request's session, opened only if it is called (see
    :func:`session_for`): a request served from caches then pays nothing for the database."""
    holder: RequestSession | None = request.scope.get("state", {}).get(_STATE_KEY)
    if holder is None:
        raise RuntimeError("SessionMiddleware is not installed on this app")
    return holder.get


async def get_session(request: Request) -> AsyncSession:
    """:func:`session_for` as a FastAPI dependency (use :data:`SessionDep`)."""
    return session_for(request)


#: The session of the request.
SessionDep = Annotated[AsyncSession, Depends(get_session)]


# --- Alembic -------------------------------------------------------------------------------


def alembic_config(script_location: str, url: str) -> Any:
    """An Alembic Config for a service's migrations folder and database URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["medmesh_url"] = url
    return config


def run_migrations_online(target_metadata: MetaData | list[MetaData]) -> None:
    """The body of a service's ``migrations/env.py``: upgrade with an async engine."""
    from alembic import context

    config = context.config
    url: str = (
        config.attributes.get("medmesh_url") or config.get_main_option("sqlalchemy.url") or ""
    )

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        do_run(connection)
        return

    async def run_async() -> None:
        engine = create_unpooled_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await dispose_engine(engine)

    asyncio.run(run_async())


async def upgrade_database(script_location: str, url: str, revision: str = "head") -> None:
    """Apply a service's migrations up to ``revision`` (from async code)."""
    from alembic import command

    engine = create_unpooled_engine(url)
    try:
        async with engine.begin() as conn:

            def run(connection: Connection) -> None:
                config = alembic_config(script_location, url)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)

            await conn.run_sync(run)
    finally:
        await dispose_engine(engine)
