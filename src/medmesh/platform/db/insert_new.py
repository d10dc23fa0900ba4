"""``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key`` of many rows in few statements
(:class:`InsertNew`), straight on the driver's cursor where nothing listens to the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from medmesh.platform.db.fast import _cursor


class InsertNew:
    """``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key`` of many rows: the rows whose key
    is not stored yet are inserted (a key repeated in ``rows`` counts once, the first row wins),
    and the keys of those inserted are returned. Rows are tuples in :attr:`columns` order.

    The plain path is that Core statement as an executemany. On SQLite with nothing listening to
    the engine's statements, the rows go instead as multi-row ``VALUES`` statements (at most
    :attr:`ROWS_PER_STATEMENT` rows each) straight on the driver's cursor: one statement instead
    of one per row, and none of SQLAlchemy's per-row parameter building. Their values go through
    the columns' bind processors (:class:`UTCDateTime`'s is one function on SQLite); a
    processor's last answer is reused for the same value object, so a column every row shares
    is converted once.
    ``tests/platform/test_fast_insert_new.py`` compares both paths' stored rows and answers.
    """

    #: Rows of one multi-row statement at most (SQLite allows 32,766 bound values from 3.32).
    ROWS_PER_STATEMENT = 512

    def __init__(self, table: Table, columns: Sequence[str], key: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.key = tuple(key)
        self._sql: dict[tuple[type[Dialect], int], str] = {}

    def statement(self, dialect: Dialect) -> Insert:
        """The plain Core statement (PostgreSQL's or SQLite's ``ON CONFLICT``)."""
        dialect_insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        key_columns = [self.table.c[name] for name in self.key]
        return (
            dialect_insert(self.table)
            .on_conflict_do_nothing(index_elements=list(self.key))
            .returning(*key_columns)
        )

    async def run(
        self, session: AsyncSession, rows: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """Insert the new ``rows`` in ``session``'s transaction; the keys of those inserted."""
        if not rows:
            return []
        return await session.run_sync(self._run, rows)

    def direct_applies(self, connection: Connection) -> bool:
        """Whether the multi-row path serves this connection."""
        dialect = connection.dialect
        return (
            dialect.name == "sqlite"
            and getattr(dialect.dbapi, "sqlite_version_info", (0,)) >= (3, 35)
            and not connection.dispatch.before_cursor_execute
        )

    def _run(self, sync_session: Session, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        connection = sync_session.connection()
        if self.direct_applies(connection):
            return self.direct(connection, rows)
        return self.plain(connection, rows)

    def plain(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The Core statement's answer, as SQLAlchemy runs it."""
        params = [dict(zip(self.columns, row, strict=True)) for row in rows]
        result = connection.execute(self.statement(connection.dialect), params)
        return [tuple(row) for row in result.all()]

    def direct(
        self, connection: Connection, rows: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """The multi-row statements' answer (SQLite only)."""
        dialect = connection.dialect
        columns = self.table.c
        results = [
            columns[name].type.dialect_impl(dialect).result_processor(dialect, None)
            for name in self.key
        ]
        try:
            values = self._values(rows, self._processors(dialect))
        except Exception as exc:  # a value its column type refuses, as SQLAlchemy reports it
            raise StatementError(
                f"({type(exc).__module__}.{type(exc).__name__}) {exc}", None, None, exc
            ) from exc
        width = len(self.columns)
        inserted: list[tuple[Any, ...]] = []
        start = 0
        while start < len(rows):
            count = self._chunk(len(rows) - start)
            sql = self._multi_row_sql(dialect, count)
            chunk = values[start * width : (start + count) * width]
            with _cursor(connection.connection, dialect, sql, chunk) as cursor:
                cursor.execute(sql, chunk)
                found = cursor.fetchall()
            if any(results):
                found = [
                    tuple(v if p is None else p(v) for v, p in zip(row, results, strict=True))
                    for row in found
                ]
            inserted.extend(tuple(row) for row in found)
            start += count
        return inserted

    def _processors(self, dialect: Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
        """(position, converter) of each column whose values are converted."""
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, name in enumerate(self.columns):
            column_type = self.table.c[name].type
            process = column_type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((i, process))
        return processors

    @staticmethod
    def _values(
        rows: Sequence[Sequence[Any]], processors: list[tuple[int, Callable[[Any], Any]]]
    ) -> list[Any]:
        """Every row's values in column order, flat, converted."""
        flat: list[Any] = []
        if not processors:
            for row in rows:
                flat.extend(row)
            return flat
        last_in: dict[int, Any] = dict.fromkeys(range(len(processors)), _UNSET)
        last_out: dict[int, Any] = {}
        for row in rows:
            values = list(row)
            for n, (i, process) in enumerate(processors):
                value = values[i]
                if value is last_in[n]:
                    values[i] = last_out[n]
                    continue
                converted = process(value)
                last_in[n] = value
                last_out[n] = converted
                values[i] = converted
            flat.extend(values)
        return flat

    def _chunk(self, remaining: int) -> int:
        """Rows of the next statement: :attr:`ROWS_PER_STATEMENT`, or the largest power of two
        that fits (so a handful of statements are ever compiled, whatever the batch sizes)."""
        if remaining >= self.ROWS_PER_STATEMENT:
            return self.ROWS_PER_STATEMENT
        return 1 << (remaining.bit_length() - 1)

    def _multi_row_sql(self, dialect: Dialect, count: int) -> str:
        """The Core statement with ``count`` rows of ``VALUES``, compiled (row after row, each
        in :attr:`columns` order: the order :meth:`_values` gives)."""
        sql = self._sql.get((type(dialect), count))
        if sql is None:
            rows: list[dict[str, Any]] = [
                {name: bindparam(f"r{n}_{i}") for i, name in enumerate(self.columns)}
                for n in range(count)
            ]
            compiled = self.statement(dialect).values(rows).compile(dialect=dialect)
            expected = [f"r{n}_{i}" for n in range(count) for i in range(len(self.columns))]
            if list(compiled.positiontup or ()) != expected:
                raise RuntimeError("multi-row VALUES compiled in another order")
            sql = compiled.string
            if len(self._sql) < 64:
                self._sql[(type(dialect), count)] = sql
        return sql


#: No value yet (a processor's memo never matches it).
_UNSET = object()
