"""Every query of search: index rows in, matching rows out (narrowed by the caller's access)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Insert,
    SQLColumnExpression,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.models import ResourceRow
from medmesh.phi.search.dates import MAX_DATE, MIN_DATE
from medmesh.phi.search.definitions import parameters_of
from medmesh.phi.search.extract import IndexValues
from medmesh.phi.search.models import (
    INDEX_TABLES,
    DateIndexRow,
    ReferenceIndexRow,
    StringIndexRow,
    TokenIndexRow,
)
from medmesh.platform.db import Rows, Statement, UTCDateTime, execute_together

#: ``session.info`` key of the index rows a deferred block holds (see ``SearchIndex.deferred``).
PENDING = "medmesh.phi.search.pending"

#: A sort key: its SQL expression and whether it runs descending.
SortKey = tuple[SQLColumnExpression[Any], bool]


def sort_keys(resource_type: str, sort: Sequence[tuple[str, bool]]) -> list[SortKey]:
    """The ORDER BY of ``_sort`` (resource id last, as the tie-breaker that makes keysets unique)."""
    r = ResourceRow
    keys: list[SortKey] = []
    for name, desc in sort:
        if name == "_id":
            keys.append((r.id, desc))
            return keys
        if name == "_lastUpdated":
            keys.append((r.last_updated, desc))
            continue
        d = DateIndexRow
        definition = parameters_of(resource_type)[name]
        earliest = (
            select(func.min(d.low))
            .where(
                d.resource_type == r.resource_type,
                d.resource_id == r.id,
                d.param == definition.index_key,
            )
            .scalar_subquery()
        )
        # Resources without the date sort last either way.
        missing = literal(MIN_DATE if desc else MAX_DATE, UTCDateTime())
        keys.append((func.coalesce(earliest, missing).label(f"sort_{len(keys)}"), desc))
    keys.append((r.id, False))
    return keys


def _keyset(keys: Sequence[SortKey], values: Sequence[Any], backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after (or, ``backwards``, before) ``values`` in the order of ``keys``."""
    alternatives = []
    for i, (expr, desc) in enumerate(keys):
        after = (expr < values[i]) if desc != backwards else (expr > values[i])
        equal = [keys[j][0] == values[j] for j in range(i)]
        alternatives.append(and_(*equal, after))
    return or_(*alternatives)


def pending_rows(session: AsyncSession) -> dict[tuple[str, str], IndexValues] | None:
    """The rows a deferred block holds for ``session``, by resource (None outside one)."""
    pending: dict[tuple[str, str], IndexValues] | None = session.info.get(PENDING)
    return pending


#: The Core tables of the index models (Core inserts skip the ORM's bulk-insert path).
_TABLES: dict[type[Any], Table] = {m: cast(Table, m.__table__) for m in INDEX_TABLES}
_INSERTS: dict[type[Any], Insert] = {m: insert(t) for m, t in _TABLES.items()}
#: The columns of the tuples :func:`insert_statements` builds, in their order.
_COLUMNS: dict[type[Any], tuple[str, ...]] = {
    StringIndexRow: ("resource_type", "resource_id", "param", "token", "indexed"),
    TokenIndexRow: ("resource_type", "resource_id", "param", "system", "code"),
    DateIndexRow: ("resource_type", "resource_id", "param", "low", "high"),
    ReferenceIndexRow: ("resource_type", "resource_id", "param", "target_type", "target_id"),
}
_REMOVE_INDEX = [
    delete(t).where(t.c.resource_type == bindparam("rt"), t.c.resource_id == bindparam("rid"))
    for t in _TABLES.values()
]


def insert_statements(resources: Iterable[IndexValues]) -> list[Statement]:
    """The inserts of the index rows of many resources: one executemany per table."""
    strings = Rows(_COLUMNS[StringIndexRow])
    tokens = Rows(_COLUMNS[TokenIndexRow])
    dates = Rows(_COLUMNS[DateIndexRow])
    references = Rows(_COLUMNS[ReferenceIndexRow])
    for resource_strings, resource_tokens, resource_dates, resource_references in resources:
        strings += resource_strings
        tokens += resource_tokens
        dates += resource_dates
        references += resource_references
    # Core tables: the ORM's bulk-insert path costs more than the statement.
    return [
        (_INSERTS[table], values)
        for table, values in (
            (StringIndexRow, strings),
            (TokenIndexRow, tokens),
            (DateIndexRow, dates),
            (ReferenceIndexRow, references),
        )
        if values
    ]


class SearchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def flush_pending(self) -> None:
        """Insert the rows held by a deferred block; every search does so before it reads."""
        pending = pending_rows(self.session)
        if pending:
            resources = list(pending.values())
            pending.clear()
            await self.insert_index(resources)

    # --- index maintenance ------------------------------------------------------------------

    async def replace_index(
        self, resource_type: str, resource_id: str, rows: IndexValues, *, fresh: bool
    ) -> None:
        """Store ``rows`` as the index of the resource (``fresh``: it has none yet)."""
        if not fresh:
            await self.remove_index(resource_type, resource_id)
        await self.insert_index([rows])

    async def insert_index(self, resources: Iterable[IndexValues]) -> None:
        """Insert the rows of many resources: one executemany per table."""
        await execute_together(self.session, insert_statements(resources))

    async def remove_index(self, resource_type: str, resource_id: str) -> None:
        for statement in _REMOVE_INDEX:
            await self.session.execute(statement, {"rt": resource_type, "rid": resource_id})

    # --- searching ----------------------------------------------------------------------------

    @staticmethod
    def _where(
        resource_type: str, conditions: Sequence[ColumnElement[bool]]
    ) -> ColumnElement[bool]:
        r = ResourceRow
        return and_(r.resource_type == resource_type, r.deleted.is_(False), *conditions)

    async def page(
        self,
        resource_type: str,
        conditions: Sequence[ColumnElement[bool]],
        keys: Sequence[SortKey],
        cursor: Sequence[Any] | None,
        *,
        backwards: bool,
        limit: int,
    ) -> list[tuple[ResourceRow, list[Any]]]:
        """Up to ``limit`` matching rows after ``cursor`` (before it, ``backwards``), with their sort values."""
        await self.flush_pending()
        where = self._where(resource_type, conditions)
        if cursor is not None:
            where = and_(where, _keyset(keys, cursor, backwards))
        order = [(expr.desc() if desc != backwards else expr.asc()) for expr, desc in keys]
        stmt = (
            select(ResourceRow, *(expr for expr, _ in keys))
            .where(where)
            .order_by(*order)
            .limit(limit)
        )
        result = await self.session.execute(stmt)
        rows = [(row[0], list(row[1:])) for row in result.all()]
        return rows[::-1] if backwards else rows

    async def count(self, resource_type: str, conditions: Sequence[ColumnElement[bool]]) -> int:
        await self.flush_pending()
        stmt = (
            select(func.count())
            .select_from(ResourceRow)
            .where(self._where(resource_type, conditions))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def ids(
        self, resource_type: str, conditions: Sequence[ColumnElement[bool]], limit: int
    ) -> list[str]:
        await self.flush_pending()
        stmt = (
            select(ResourceRow.id)
            .where(self._where(resource_type, conditions))
            .order_by(ResourceRow.id)
        )
        return list((await self.session.scalars(stmt.limit(limit))).all())

    async def rows(
        self, resource_type: str, conditions: Sequence[ColumnElement[bool]], limit: int
    ) -> Sequence[ResourceRow]:
        """Up to ``limit`` matching rows, by id."""
        await self.flush_pending()
        stmt = (
            select(ResourceRow)
            .where(self._where(resource_type, conditions))
            .order_by(ResourceRow.id)
        )
        return (await self.session.scalars(stmt.limit(limit))).all()

    async def references_of(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        key: str,
        target_types: Sequence[str],
    ) -> list[tuple[str, str]]:
        """``(target_type, target_id)`` referenced through ``key`` by the given resources."""
        ref = ReferenceIndexRow
        stmt = select(ref.target_type, ref.target_id).where(
            ref.resource_type == resource_type,
            ref.resource_id.in_(list(resource_ids)),
            ref.param == key,
        )
        if target_types:
            stmt = stmt.where(ref.target_type.in_(list(target_types)))
        return [(t, i) for t, i in (await self.session.execute(stmt.distinct())).all()]

    async def rows_by_id(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        narrowing: ColumnElement[bool],
        limit: int,
    ) -> Sequence[ResourceRow]:
        r = ResourceRow
        stmt = (
            select(r)
            .where(self._where(resource_type, [r.id.in_(list(resource_ids)), narrowing]))
            .order_by(r.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def referencing(
        self,
        source_type: str,
        key: str,
        target_type: str,
        target_ids: Sequence[str],
        narrowing: ColumnElement[bool],
        limit: int,
    ) -> Sequence[ResourceRow]:
        """Resources of ``source_type`` whose ``key`` points at one of ``target_type/target_ids``."""
        r, ref = ResourceRow, ReferenceIndexRow
        sources = select(ref.resource_id).where(
            ref.resource_type == source_type,
            ref.param == key,
            ref.target_type == target_type,
            ref.target_id.in_(list(target_ids)),
        )
        stmt = (
            select(r)
            .where(self._where(source_type, [r.id.in_(sources), narrowing]))
            .order_by(r.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()
