"""Queries of the resource store: current rows and versions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.models import ResourceRow, ResourceVersionRow, current_body
from medmesh.platform.db import Database, OneRowRead, Statement
from medmesh.platform.paging import keyset_page


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


_CURRENT_TABLE = cast(Table, ResourceRow.__table__)
_VERSION_TABLE = cast(Table, ResourceVersionRow.__table__)
_COLUMNS = ("resource_type", "id", "version", "last_updated", "deleted", "patient_id", "body")
_INSERT_CURRENT = insert(_CURRENT_TABLE)
_INSERT_VERSION = insert(_VERSION_TABLE)

#: The current row as a plain Core row (attribute access like the ORM object, without the
#: ORM's identity map and loading, which cost more than the query on a read).
_GET_CURRENT = select(*_CURRENT_TABLE.c, current_body(_CURRENT_TABLE).label("body")).where(
    _CURRENT_TABLE.c.resource_type == bindparam("rt"), _CURRENT_TABLE.c.id == bindparam("rid")
)


def keys_clause(keys: Iterable[tuple[str, str]]) -> ColumnElement[bool]:
    """``(resource_type, id)`` is one of ``keys``: ``resource_type = ? AND id IN (...)`` for
    each type, OR'ed. Each is a search of the primary key (SQLite plans a row-value ``IN``
    list as a scan of every current row)."""
    ids: dict[str, list[str]] = {}
    for resource_type, resource_id in keys:
        ids.setdefault(resource_type, []).append(resource_id)
    r = ResourceRow
    return or_(*(and_(r.resource_type == t, r.id.in_(i)) for t, i in ids.items()))


def version_of(row: ResourceRow, method: str, body: bytes | None) -> ResourceVersionRow:
    """The history entry of a current row (``body``: its sealed body, None for a deletion)."""
    return ResourceVersionRow(
        resource_type=row.resource_type,
        id=row.id,
        version=row.version,
        last_updated=row.last_updated,
        method=method,
        deleted=row.deleted,
        patient_id=row.patient_id,
        body=body,
    )


class CommittedRow(NamedTuple):
    """A current row as the committed read returns it."""

    resource_type: str
    id: str
    version: int
    last_updated: datetime
    deleted: bool
    patient_id: str | None
    body: bytes | None


_READ_COMMITTED = OneRowRead(_GET_CURRENT, CommittedRow)

#: What reads and writes need of a current row: a Core row, a committed row or an ORM object.
CurrentRow = ResourceRow | Row[Any] | CommittedRow


async def get_committed(
    database: Database, resource_type: str, resource_id: str
) -> CommittedRow | None:
    """The current row as last committed, outside any session (see :class:`OneRowRead`)."""
    return await _READ_COMMITTED.first(database, {"rt": resource_type, "rid": resource_id})


class ResourceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, resource_type: str, resource_id: str) -> Row[Any] | None:
        # One prepared Core statement (its compiled form is cached) instead of Session.get, which
        # rebuilds and re-annotates a composite-key query on every call (a large share of a read;
        # see docs/decisions/0016-hot-path-statements.md).
        result = await self.session.execute(_GET_CURRENT, {"rt": resource_type, "rid": resource_id})
        return result.first()

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> Sequence[ResourceRow]:
        if not keys:
            return []
        stmt = select(ResourceRow).where(keys_clause(keys), ResourceRow.deleted.is_(False))
        return (await self.session.scalars(stmt)).all()

    async def get_version(
        self, resource_type: str, resource_id: str, version: int
    ) -> ResourceVersionRow | None:
        key = {"resource_type": resource_type, "id": resource_id, "version": version}
        return await self.session.get(ResourceVersionRow, key)

    @staticmethod
    def new_resource_inserts(values: dict[str, Any], method: str, body: bytes) -> list[Statement]:
        """The inserts of a resource's first current row and its history entry (``values``:
        the row's columns, those of ``resources``; ``body``: the version's sealed body), for the
        caller to run together with the resource's other writes (:func:`execute_together`).
        Core statements, not ``session.add``: the ORM's unit of work (and even an ORM object)
        costs more than the inserts."""
        version = {**values, "method": method, "body": body}
        return [(_INSERT_CURRENT, values), (_INSERT_VERSION, version)]

    async def replace(self, row: ResourceRow, expected_version: int) -> bool:
        """Move the current row from ``expected_version`` to ``row.version``; False when it moved meanwhile."""
        result = await self.session.execute(
            update(ResourceRow)
            .where(
                ResourceRow.resource_type == row.resource_type,
                ResourceRow.id == row.id,
                ResourceRow.version == expected_version,
            )
            .values(
                version=row.version,
                last_updated=row.last_updated,
                deleted=row.deleted,
                patient_id=row.patient_id,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def add_version(self, version: ResourceVersionRow) -> None:
        values = {c: getattr(version, c) for c in _COLUMNS}
        values["method"] = version.method
        await self.session.execute(_INSERT_VERSION, values)

    async def add_version_of(self, row: ResourceRow, method: str, body: bytes | None) -> None:
        """Record ``row`` (just written as the current version) in the version history, with
        its sealed ``body`` (None for a deletion)."""
        await self.add_version(version_of(row, method, body))

    async def history(
        self,
        *,
        resource_type: str | None,
        resource_id: str | None,
        since: datetime | None,
        before: tuple[datetime, str, str, int] | None,
        limit: int,
        visible: ColumnElement[bool] | None,
    ) -> Sequence[ResourceVersionRow]:
        """Versions newest first; ``before`` is the keyset cursor of the previous page."""
        v = ResourceVersionRow
        conditions: list[ColumnElement[bool]] = []
        if resource_type is not None:
            conditions.append(v.resource_type == resource_type)
        if resource_id is not None:
            conditions.append(v.id == resource_id)
        if since is not None:
            conditions.append(v.last_updated >= since)
        if visible is not None:
            conditions.append(visible)
        keys = [v.last_updated, v.resource_type, v.id, v.version]
        stmt = select(v).where(and_(True, *conditions))
        stmt = keyset_page(stmt, keys, before, limit, descending=True)
        return (await self.session.scalars(stmt)).all()

    async def current_for_patient(
        self, patient_id: str, types: Sequence[str] | None, limit: int
    ) -> Sequence[ResourceRow]:
        stmt = select(ResourceRow).where(
            ResourceRow.patient_id == patient_id, ResourceRow.deleted.is_(False)
        )
        if types:
            stmt = stmt.where(ResourceRow.resource_type.in_(list(types)))
        stmt = stmt.order_by(ResourceRow.resource_type, ResourceRow.id).limit(limit)
        return (await self.session.scalars(stmt)).all()
