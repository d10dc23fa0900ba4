"""Write transactions outside any ORM session, for the hot writes of a service.

:func:`write_transaction` opens a :class:`WriteTransaction`: Core statements (inserts, updates,
deletes, selects) run in order in one transaction, committed when the block ends and rolled back
when it raises. It costs what the statements cost, not what a session's bookkeeping costs: a
``Session`` begins, flushes, commits and closes through SQLAlchemy's greenlet bridge and its
transaction objects, several times the cost of an indexed insert (decision 0039).

Two implementations behind the one interface:

- **On the embedded driver** (``sqlite+medmesh`` on a file, nothing listening to the engine's
  statements) the transaction runs on the file's writer connection, in the driver's writer
  queue, as a member of a group commit (:mod:`medmesh.platform.db.sqlite.groups`): the
  transactions of concurrent requests share one ``BEGIN IMMEDIATE`` ... ``COMMIT``, each in a
  savepoint of its own, and each one's ``commit`` returns once the group is committed. Each
  statement runs on the :mod:`sqlite3` cursor with the columns' bind and result processors
  (``UTCDateTime``'s text written directly, as ``InsertNew`` writes it). Its first statement,
  read or write, begins the transaction, so a read in it sees what the transaction writes over.
- **Elsewhere** (PostgreSQL, another driver, an engine traced statement by statement) it is a
  SQLAlchemy Core transaction on an engine connection (``AsyncConnection``), every statement
  through ``Connection.execute``.

Errors are SQLAlchemy's on both (``IntegrityError`` for a duplicate key, ``StatementError`` for a
value its column refuses). The direct path refuses, with a ``TypeError`` on first use, any
statement whose execution needs more than its compiled text (``RETURNING``, expanding ``IN``
lists, Python-side column defaults): it never runs one differently.
``tests/platform/test_direct_writes.py`` runs the same statements on both and compares the stored
rows, the answers and the errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import ClauseElement, Executable

from medmesh.platform.db.engine import Database
from medmesh.platform.db.fast import DictParams, Params, Rows, Statement, as_dicts
from medmesh.platform.db.sqlite import DBAPI as SqliteDBAPI
from medmesh.platform.db.sqlite.groups import WriteGroup, write_group

__all__ = ["WriteTransaction", "direct_applies", "write_transaction"]


class WriteTransaction(Protocol):
    """One write transaction (see :func:`write_transaction`)."""

    #: The database's dialect name (``sqlite``, ``postgresql``), for dialect-specific statements.
    dialect_name: str

    async def execute(self, statement: Executable, params: Params | None = None) -> int:
        """Run ``statement`` (with ``params``, a list of them for an executemany); the rows it
        changed (the total for an executemany)."""
        ...

    async def execute_all(self, statements: Sequence[Statement]) -> None:
        """Run ``statements`` in order."""
        ...

    async def all(self, statement: Select[Any], params: dict[str, Any] | None = None) -> list[Any]:
        """The rows of ``statement`` (tuples of its columns, converted as its column types
        convert them)."""
        ...


def direct_applies(database: Database) -> bool:
    """Whether :func:`write_transaction` runs on the embedded driver directly for ``database``."""
    return _write_group(database.engine) is not None


@asynccontextmanager
async def write_transaction(database: Database) -> AsyncIterator[WriteTransaction]:
    """A transaction for Core statements, committed when the block ends, rolled back when it
    raises (see the module's text). Nothing is begun before the first statement."""
    group = _write_group(database.engine)
    transaction: _DirectTransaction | _CoreTransaction
    if group is not None:
        transaction = _DirectTransaction(database.engine.sync_engine.dialect, group)
    else:
        transaction = _CoreTransaction(database.engine)
    try:
        yield transaction
    except BaseException:
        await transaction.rollback()
        raise
    await transaction.commit()


def _write_group(engine: AsyncEngine) -> WriteGroup | None:
    """The group commit of ``engine``'s file when the embedded driver serves it and nothing
    listens to its statements; None otherwise (also before its first connection opened the
    file's writer)."""
    sync_engine = engine.sync_engine
    dbapi = sync_engine.dialect.dbapi
    if not isinstance(dbapi, SqliteDBAPI) or sync_engine.dispatch.before_cursor_execute:
        return None
    url = engine.url
    if not url.database or url.database == ":memory:" or url.query:
        return None
    found = dbapi.writer_of(url.database)
    if found is None:
        return None
    file, timeout = found
    return write_group(file, dbapi.writers[file], timeout)


class _Prepared:
    """A statement compiled once for SQLite and a set of parameter names: its SQL, and for each
    positional parameter its name, its bound value when the statement carries one, and its
    type's bind processor; for a select, its columns' result processors."""

    __slots__ = ("binds", "get", "in_order", "processed", "results", "sql")

    _cache: dict[tuple[Executable, type[Dialect], tuple[str, ...]], _Prepared] = {}

    def __init__(
        self,
        sql: str,
        binds: list[tuple[str, Any, Callable[[Any], Any] | None]],
        results: list[Callable[[Any], Any] | None],
        keys: tuple[str, ...],
    ) -> None:
        self.sql = sql
        self.binds = binds
        self.results = results
        names = [name for name, _, _ in binds]
        #: A row's values in bind order when the row names them all (``itemgetter`` of one
        #: name gives the value, not a tuple); None when some come from the statement.
        self.get: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
        if names and set(names) <= set(keys):
            self.get = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
        #: The positions whose type converts the value (dates, JSON, booleans...).
        self.processed = [(i, p) for i, (_, _, p) in enumerate(binds) if p is not None]
        #: Whether the parameters are the keys in their order (a :class:`Rows` tuple binds as
        #: it is).
        self.in_order = tuple(names) == keys

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Prepared:
        key = (statement, type(dialect), keys)
        prepared = cls._cache.get(key)
        if prepared is None:
            prepared = cls._prepare(statement, dialect, keys)
            if len(cls._cache) < 512:  # statements are module constants: a handful of keys
                cls._cache[key] = prepared
        return prepared

    @classmethod
    def _prepare(cls, statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Prepared:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"write_transaction runs Core statements, not {statement!r}")
        column_keys = list(keys) if isinstance(statement, Insert) else None
        compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys)
        refused = (
            compiled.effective_returning
            or compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.literal_execute_params
            or any(bind.expanding for bind in compiled.binds.values())
        )
        if refused or not compiled.positional:
            raise TypeError(
                "write_transaction runs statements whose compiled text is all they need "
                f"(no RETURNING, expanding IN or Python-side defaults): {compiled.string!r}"
            )
        binds: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if name not in keys and (bind.required or bind.callable is not None):
                raise TypeError(f"{compiled.string!r}: no value for the parameter {name!r}")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((name, bind.value, processor))
        results: list[Any] = []
        if isinstance(statement, Select):
            results = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in statement.selected_columns
            ]
        return cls(compiled.string, binds, results, keys)

    def values(self, row: dict[str, Any] | tuple[Any, ...]) -> list[Any]:
        """The positional values of one row of parameters (a dict, or a tuple in bind order),
        converted (None too: a JSON column stores it as JSON ``null``, as SQLAlchemy does)."""
        if isinstance(row, tuple):
            values = list(row)
        elif self.get is not None:
            values = list(self.get(row))
        else:
            values = [row.get(name, bound) for name, bound, _ in self.binds]
        for i, process in self.processed:
            values[i] = process(values[i])
        return values


class _DirectTransaction:
    """A member of the group commit of a file's writer connection (see
    :mod:`medmesh.platform.db.sqlite.groups`)."""

    __slots__ = ("_conn", "_dialect", "_group", "dialect_name")

    def __init__(self, dialect: Dialect, group: WriteGroup) -> None:
        self._dialect = dialect
        self.dialect_name = dialect.name
        self._group = group
        self._conn: sqlite3.Connection | None = None

    async def _begin(self) -> sqlite3.Connection:
        """Wait for this transaction's turn in the file's group (its savepoint open)."""
        try:
            self._conn = await self._group.begin()
        except sqlite3.Error as exc:
            raise self._error(exc, "BEGIN IMMEDIATE") from exc
        return self._conn

    def _error(self, exc: Exception, sql: str, params: Any = None) -> StatementError:
        """``exc`` (a :mod:`sqlite3` error) as SQLAlchemy raises it."""
        return DBAPIError.instance(sql, params, exc, sqlite3.Error, dialect=self._dialect)

    def _run(self, prepared: _Prepared, params: Params | None) -> sqlite3.Cursor:
        assert self._conn is not None
        rows = [params or {}] if not isinstance(params, list) else params
        try:
            values = [prepared.values(row) for row in rows]
        except Exception as exc:  # a value its column type refuses, as SQLAlchemy reports it
            raise StatementError(
                f"({type(exc).__module__}.{type(exc).__name__}) {exc}", prepared.sql, None, exc
            ) from exc
        try:
            if isinstance(params, list):
                return self._conn.executemany(prepared.sql, values)
            return self._conn.execute(prepared.sql, values[0])
        except sqlite3.Error as exc:
            raise self._error(exc, prepared.sql, values) from exc

    @staticmethod
    def _keys(params: DictParams | None) -> tuple[str, ...]:
        if not params:
            return ()
        return tuple(params[0] if isinstance(params, list) else params)

    async def execute(self, statement: Executable, params: Params | None = None) -> int:
        if isinstance(params, list) and not params:
            return 0
        if isinstance(params, Rows):
            prepared = _Prepared.of(statement, self._dialect, params.columns)
            if not prepared.in_order:
                params = params.dicts()
        else:
            prepared = _Prepared.of(statement, self._dialect, self._keys(params))
        if self._conn is None:
            await self._begin()
        cursor = self._run(prepared, params)
        count = cursor.rowcount
        cursor.close()
        return count

    async def execute_all(self, statements: Sequence[Statement]) -> None:
        for statement, params in statements:
            await self.execute(statement, params)

    async def all(self, statement: Select[Any], params: dict[str, Any] | None = None) -> list[Any]:
        prepared = _Prepared.of(statement, self._dialect, self._keys(params))
        if self._conn is None:
            await self._begin()
        cursor = self._run(prepared, params)
        found = cursor.fetchall()
        cursor.close()
        results = prepared.results
        if not any(results):
            return found
        return [
            tuple(v if p is None else p(v) for v, p in zip(row, results, strict=True))
            for row in found
        ]

    async def commit(self) -> None:
        if self._conn is None:
            return
        self._conn = None
        try:
            await self._group.commit()
        except sqlite3.Error as exc:
            raise self._error(exc, "COMMIT") from exc

    async def rollback(self) -> None:
        if self._conn is None:
            return
        self._conn = None
        await self._group.rollback()


class _CoreTransaction:
    """The plain path: a SQLAlchemy Core transaction on a connection of ``engine``."""

    __slots__ = ("_conn", "_engine", "dialect_name")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect_name = engine.dialect.name
        self._conn: AsyncConnection | None = None

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._engine.connect()
        return self._conn

    async def _first(self, statement: Executable, params: DictParams | None) -> Any:
        """The transaction's first statement: a connection found dead at ``BEGIN`` (the server
        ended it and the loop has not read that yet) is replaced once; nothing had run on it."""
        conn = await self._connection()
        try:
            return await conn.execute(statement, params)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        await self._close()
        return await (await self._connection()).execute(statement, params)

    async def _execute(self, statement: Executable, params: DictParams | None) -> Any:
        if self._conn is None or not self._conn.in_transaction():
            return await self._first(statement, params)
        return await self._conn.execute(statement, params)

    async def execute(self, statement: Executable, params: Params | None = None) -> int:
        if isinstance(params, list) and not params:
            return 0
        result = await self._execute(statement, as_dicts(params))
        return int(result.rowcount)

    async def execute_all(self, statements: Sequence[Statement]) -> None:
        for statement, params in statements:
            await self.execute(statement, params)

    async def all(self, statement: Select[Any], params: dict[str, Any] | None = None) -> list[Any]:
        result = await self._execute(statement, params)
        return [tuple(row) for row in result.all()]

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def commit(self) -> None:
        try:
            if self._conn is not None and self._conn.in_transaction():
                await self._conn.commit()
        finally:
            await self._close()

    async def rollback(self) -> None:
        try:
            if self._conn is not None and self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._close()
