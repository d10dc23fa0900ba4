"""Databases: one SQLAlchemy 2 async engine per service, a request-scoped session,
and Alembic migrations per service.

SQLite (WAL) at ``var/<service>.db`` is the embedded default; PostgreSQL is used
when the service's ``DATABASE_URL`` says ``postgresql+asyncpg://``. The session
dependency commits when the request succeeds and rolls back when it fails:
services never commit (they ``flush()`` when they need an id early).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, Select, event, text
from sqlalchemy.engine import Connection, Dialect, Engine, Row, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn
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
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # the driver's own error for a dead connection
            raise DisconnectionError("the connection did not answer a ping") from error


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
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
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


R = TypeVar("R")


class OneRowRead(Generic[R]):
    """A one-row ``SELECT`` prepared once and run against what is committed, outside any session.

    On the embedded driver (``sqlite+medmesh`` on a file) it is one :mod:`sqlite3` call on the
    database's read-only connection, on the loop's thread, with the columns' result processors
    applied as SQLAlchemy would: the pool checkout, execution context and result machinery cost
    several times the indexed statement. On asyncpg it is the pool's checkout, the statement on
    the DBAPI cursor in autocommit (one round trip) and the return, in one trip through the
    greenlet bridge; elsewhere the same through the engine. Either way the row is built
    with ``row_type(*columns)``.
    """

    def __init__(self, statement: Select[Any], row_type: Callable[..., R]) -> None:
        self.statement = statement
        self.row_type = row_type
        self._prepared: dict[str, tuple[str, tuple[str, ...], list[Any]]] = {}

    async def first(self, database: Database, params: dict[str, Any]) -> R | None:
        """The first row (as last committed), or None."""
        reader = database.committed_reader()
        engine = database.engine
        if reader is not None:
            sql, names, processors = self._prepare(engine.dialect)
            # Every row fetched: the statement runs to its end, so its read transaction ends here
            # and holds no WAL snapshot (a later read sees later commits; checkpoints can restart
            # the WAL).
            rows = reader.execute(sql, [params[name] for name in names]).fetchall()
            found = rows[0] if rows else None
        elif engine.dialect.driver == "asyncpg":
            sql, names, processors = self._prepare(engine.dialect)
            found = await greenlet_spawn(
                _fetch_first_asyncpg, engine.sync_engine, sql, [params[name] for name in names]
            )
        else:
            row = await greenlet_spawn(self._first_sync, engine.sync_engine, params)
            return None if row is None else self.row_type(*row)
        if found is None:
            return None
        return self.row_type(
            *[v if p is None else p(v) for v, p in zip(found, processors, strict=True)]
        )

    def _first_sync(self, engine: Engine, params: dict[str, Any]) -> Row[Any] | None:
        # Autocommit: one statement needs no BEGIN and ROLLBACK around it (two round trips).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return connection.execute(self.statement, params).first()

    def _prepare(self, dialect: Dialect) -> tuple[str, tuple[str, ...], list[Any]]:
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            compiled = self.statement.compile(dialect=dialect)
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            ]
            prepared = (compiled.string, tuple(compiled.positiontup or ()), processors)
            self._prepared[dialect.name] = prepared
        return prepared


def _fetch_first_asyncpg(engine: Engine, sql: str, args: list[Any]) -> Any:
    """The first row of ``sql`` on a pooled asyncpg connection, in autocommit, through the DBAPI
    cursor (the driver's prepared-statement cache; errors as SQLAlchemy reports them). The
    pool's checkout, liveness check and return as for any statement."""
    pooled = engine.pool.connect()
    dbapi_connection: Any = pooled.dbapi_connection
    try:
        dbapi_connection.autocommit = True  # no BEGIN and ROLLBACK round trips
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(sql, args)
            return cursor.fetchone()
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                sql, args, exc, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect
            ) from exc
        finally:
            cursor.close()
    finally:
        dbapi_connection.autocommit = False
        pooled.close()


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


#: A Core statement and its parameters (a dict, or a list of dicts for an executemany).
Statement = tuple[Executable, dict[str, Any] | list[dict[str, Any]]]


async def execute_together(session: AsyncSession, statements: Sequence[Statement]) -> None:
    """Run Core ``statements`` in order in ``session``'s transaction, in one trip through
    SQLAlchemy's greenlet bridge on the session's connection.

    Each ``AsyncSession.execute`` is a trip of its own through the bridge and the ORM's execution
    path; for the handful of inserts of a FHIR create that cost more than the inserts. Plain
    inserts go further, straight to the driver's cursor (:class:`_PreparedInsert`), unless
    something listens to the engine's statements (tracing): it then sees them as usual.
    """

    def run(sync_session: Session) -> None:
        connection = sync_session.connection()
        direct = not connection.dispatch.before_cursor_execute
        for statement, params in statements:
            prepared = None
            if direct and isinstance(statement, Insert) and params:
                prepared = _PreparedInsert.of(statement, connection.dialect, params)
            if prepared is not None:
                prepared.run(connection, params)
            else:
                connection.execute(statement, params)

    if statements:
        await session.run_sync(run)


class _PreparedInsert:
    """A Core ``INSERT`` compiled once per dialect and column set, run on the DBAPI cursor with
    the column types' bind processors: what ``Connection.execute`` does, without its per-row
    parameter building, execution context and result set-up (about half of a create's
    inserts' time)."""

    __slots__ = ("binds", "get", "positional", "processed", "sql")

    _cache: dict[tuple[Insert, str, tuple[str, ...]], _PreparedInsert | None] = {}

    def __init__(self, sql: str, positional: bool, binds: list[tuple[str, Any]]) -> None:
        self.sql = sql
        self.positional = positional
        self.binds = binds
        names = [name for name, _ in binds]
        #: A row's values in bind order (``itemgetter`` of one name gives the value, not a tuple).
        self.get = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
        #: The positions whose column type converts the value (dates, booleans...).
        self.processed = [(i, process) for i, (_, process) in enumerate(binds) if process]

    @classmethod
    def of(
        cls, statement: Insert, dialect: Dialect, params: dict[str, Any] | list[dict[str, Any]]
    ) -> _PreparedInsert | None:
        """The prepared form of ``statement`` for rows with the keys of ``params``; None when
        SQLAlchemy must run it (it fills in column defaults, or returns rows)."""
        keys = tuple(params if isinstance(params, dict) else params[0])
        key = (statement, dialect.name, keys)
        if key in cls._cache:
            return cls._cache[key]
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        prepared = None
        if set(names) == set(keys) and not compiled.effective_returning:
            columns = statement.table.c
            binds = [
                (name, columns[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in names
            ]
            prepared = cls(compiled.string, compiled.positional, binds)
        if len(cls._cache) < 256:  # statements are module constants: a handful of keys
            cls._cache[key] = prepared
        return prepared

    def run(self, connection: Connection, params: dict[str, Any] | list[dict[str, Any]]) -> None:
        rows = [params] if isinstance(params, dict) else params
        binds = self.binds
        try:
            values: list[Any]
            if not self.positional:
                values = [
                    {name: row[name] if p is None else p(row[name]) for name, p in binds}
                    for row in rows
                ]
            elif not self.processed:
                values = list(map(self.get, rows))
            else:
                values = []
                for row in rows:
                    value = list(self.get(row))
                    for i, process in self.processed:
                        value[i] = process(value[i])
                    values.append(value)
        except Exception as exc:  # a value its column type refuses, as SQLAlchemy reports it
            raise StatementError(
                f"({type(exc).__module__}.{type(exc).__name__}) {exc}", self.sql, None, exc
            ) from exc
        dialect = connection.dialect
        cursor = connection.connection.cursor()
        try:
            if len(values) == 1:
                cursor.execute(self.sql, values[0])
            else:
                cursor.executemany(self.sql, values)
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                self.sql, values, exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc
        finally:
            cursor.close()


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
