"""Statements that skip the ORM session's execution path, for the hot paths of a service.

:class:`OneRowRead` reads one committed row outside any session; :func:`execute_together` runs a
write's Core statements in one trip through SQLAlchemy's greenlet bridge, plain inserts straight
on the driver's cursor. Both give what SQLAlchemy would give (column types, error types) for a
fraction of its per-statement cost; where something listens to the engine's statements (tracing)
the writes go through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect, Engine, Row
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import greenlet_spawn

from medmesh.platform.db.engine import Database

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
        #: Per dialect class (``postgresql`` compiles differently for asyncpg and psycopg).
        self._prepared: dict[type[Dialect], tuple[str, tuple[str, ...], list[Any]]] = {}

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
        prepared = self._prepared.get(type(dialect))
        if prepared is None:
            compiled = self.statement.compile(dialect=dialect)
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            ]
            prepared = (compiled.string, tuple(compiled.positiontup or ()), processors)
            self._prepared[type(dialect)] = prepared
        return prepared


def _fetch_first_asyncpg(engine: Engine, sql: str, args: list[Any]) -> Any:
    """The first row of ``sql`` on a pooled asyncpg connection, in autocommit, through the DBAPI
    cursor (the driver's prepared-statement cache; errors as SQLAlchemy reports them). The
    pool's checkout, liveness check and return as for any statement. A connection found dead
    (the server ended it and the loop has not read that yet) is discarded and the read made
    once more on another: a read changes nothing, so it is safe to repeat."""
    try:
        return _fetch_first_on_pooled(engine, sql, args)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        return _fetch_first_on_pooled(engine, sql, args)


def _fetch_first_on_pooled(engine: Engine, sql: str, args: list[Any]) -> Any:
    pooled = engine.pool.connect()
    dbapi_connection: Any = pooled.dbapi_connection
    try:
        dbapi_connection.autocommit = True  # no BEGIN and ROLLBACK round trips
        with _cursor(dbapi_connection, engine.dialect, sql, args) as cursor:
            cursor.execute(sql, args)
            return cursor.fetchone()
    except DBAPIError as error:
        driver_error: Any = error.orig
        if engine.dialect.is_disconnect(driver_error, dbapi_connection, None):
            error.connection_invalidated = True
            pooled.invalidate(error.orig)
        raise
    finally:
        dbapi_connection.autocommit = False
        pooled.close()


@contextmanager
def _cursor(dbapi_connection: Any, dialect: Dialect, sql: str, params: Any) -> Iterator[Any]:
    """A DBAPI cursor of ``dbapi_connection`` whose driver errors come out as SQLAlchemy's
    :class:`DBAPIError` (as ``Connection.execute`` raises them); closed afterwards."""
    cursor = dbapi_connection.cursor()
    try:
        yield cursor
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
    finally:
        cursor.close()


class Rows(list[tuple[Any, ...]]):
    """The rows of an executemany ``INSERT`` as tuples of the values of ``columns``, in that
    order: cheaper to build than a dict a row, and on the direct path (:class:`_PreparedInsert`)
    bound without one. Elsewhere :meth:`dicts` gives what a Core statement takes."""

    __slots__ = ("columns",)

    def __init__(self, columns: Sequence[str], rows: Iterable[tuple[Any, ...]] = ()) -> None:
        super().__init__(rows)
        self.columns = tuple(columns)

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as a dict each (column name to value)."""
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in self]


#: A Core statement and its parameters (a dict, or a list of dicts or :class:`Rows` for an
#: executemany).
Params = dict[str, Any] | list[dict[str, Any]] | Rows
Statement = tuple[Executable, Params]


#: Parameters as SQLAlchemy's ``execute`` takes them.
DictParams = dict[str, Any] | list[dict[str, Any]]


def as_dicts(params: Params | None) -> DictParams | None:
    """``params`` with :class:`Rows` as a list of dicts (what SQLAlchemy's ``execute`` takes)."""
    return params.dicts() if isinstance(params, Rows) else params


async def execute_together(session: AsyncSession, statements: Sequence[Statement]) -> None:
    """Run Core ``statements`` in order in ``session``'s transaction, in one trip through
    SQLAlchemy's greenlet bridge on the session's connection.

    Each ``AsyncSession.execute`` is a trip of its own through the bridge and the ORM's execution
    path; for the handful of inserts of a FHIR create that cost more than the inserts. Plain
    inserts go further, straight to the driver's cursor (:class:`_PreparedInsert`), unless
    something listens to the engine's statements (tracing): it then sees them as usual.
    """

    def run(sync_session: Session) -> None:
        if sync_session.in_transaction():
            run_on(sync_session)
            return
        try:
            run_on(sync_session)
        except DBAPIError as error:
            # The transaction's first statements: a connection found dead at BEGIN is replaced
            # once (as FreshConnectionSession does); nothing of the transaction ran.
            if not error.connection_invalidated:
                raise
            sync_session.rollback()
            run_on(sync_session)

    def run_on(sync_session: Session) -> None:
        run_together(sync_session.connection(), statements)

    if statements:
        await session.run_sync(run)


def run_together(connection: Connection, statements: Sequence[Statement]) -> None:
    """Run Core ``statements`` in order on a synchronous ``connection``, in its transaction
    (what :func:`execute_together` runs on the session's connection)."""
    direct = not connection.dispatch.before_cursor_execute
    for statement, params in statements:
        prepared = None
        if direct and isinstance(statement, Insert) and params:
            prepared = _PreparedInsert.of(statement, connection.dialect, params)
        if prepared is not None:
            prepared.run(connection, params)
        else:
            connection.execute(statement, as_dicts(params))


class _PreparedInsert:
    """A Core ``INSERT`` compiled once per dialect and column set, run on the DBAPI cursor with
    the column types' bind processors: what ``Connection.execute`` does, without its per-row
    parameter building, execution context and result set-up (about half of a create's
    inserts' time)."""

    __slots__ = ("binds", "get", "in_order", "positional", "processed", "sql")

    _cache: dict[tuple[Insert, type[Dialect], tuple[str, ...]], _PreparedInsert | None] = {}

    def __init__(
        self, sql: str, positional: bool, binds: list[tuple[str, Any]], keys: tuple[str, ...]
    ) -> None:
        self.sql = sql
        self.positional = positional
        self.binds = binds
        names = [name for name, _ in binds]
        #: A row's values in bind order (``itemgetter`` of one name gives the value, not a tuple).
        self.get = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
        #: The positions whose column type converts the value (dates, booleans...).
        self.processed = [(i, process) for i, (_, process) in enumerate(binds) if process]
        #: Whether the binds are the keys in their order (a :class:`Rows` tuple binds as it is).
        self.in_order = positional and tuple(names) == keys

    @classmethod
    def of(cls, statement: Insert, dialect: Dialect, params: Params) -> _PreparedInsert | None:
        """The prepared form of ``statement`` for rows with the keys of ``params``; None when
        SQLAlchemy must run it (it fills in column defaults, or returns rows)."""
        if isinstance(params, Rows):
            keys = params.columns
        else:
            keys = tuple(params if isinstance(params, dict) else params[0])
        key = (statement, type(dialect), keys)
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
            prepared = cls(compiled.string, compiled.positional, binds, keys)
        if len(cls._cache) < 256:  # statements are module constants: a handful of keys
            cls._cache[key] = prepared
        return prepared

    def run(self, connection: Connection, params: Params) -> None:
        if isinstance(params, Rows) and not self.in_order:
            params = params.dicts()
        self._execute(connection, self._values(params))

    def _values(self, params: Params) -> list[Any]:
        """The rows' values in bind order, converted as their column types convert them
        (:class:`Rows` come in bind order)."""
        rows = [params] if isinstance(params, dict) else params
        ordered = isinstance(params, Rows)
        try:
            if not self.positional:  # dicts: Rows bind as they are only to positional SQL
                return [
                    {name: row[name] if p is None else p(row[name]) for name, p in self.binds}
                    for row in cast("list[dict[str, Any]]", rows)
                ]
            if not self.processed:
                return rows if ordered else list(map(self.get, rows))
            values = []
            for row in rows:
                value = list(row if ordered else self.get(row))
                for i, process in self.processed:
                    value[i] = process(value[i])
                values.append(value)
            return values
        except Exception as exc:  # a value its column type refuses, as SQLAlchemy reports it
            raise StatementError(
                f"({type(exc).__module__}.{type(exc).__name__}) {exc}", self.sql, None, exc
            ) from exc

    def _execute(self, connection: Connection, values: list[Any]) -> None:
        with _cursor(connection.connection, connection.dialect, self.sql, values) as cursor:
            if len(values) == 1:
                cursor.execute(self.sql, values[0])
            else:
                cursor.executemany(self.sql, values)
