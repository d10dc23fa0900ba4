"""Queries of the bundles domain: many new resources at once, and a patient's compartment in pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.resources.repository import keys_clause
from medmesh.platform.db import Rows, Statement
from medmesh.platform.paging import keyset_page

# Core inserts on the tables: the ORM's bulk-insert path costs more than the statements.
_INSERT_CURRENT = insert(cast(Table, ResourceRow.__table__))
_INSERT_VERSION = insert(cast(Table, ResourceVersionRow.__table__))


#: The columns of :func:`new_resource_rows`' tuples: a current row, a version.
CURRENT_COLUMNS = ("resource_type", "id", "version", "last_updated", "deleted", "patient_id")
VERSION_COLUMNS = (
    *("resource_type", "id", "version", "last_updated", "method", "deleted", "patient_id"),
    "body",
)


def new_resource_rows() -> tuple[Rows, Rows]:
    """Empty rows for new resources: current rows (:data:`CURRENT_COLUMNS`) and first versions
    (:data:`VERSION_COLUMNS`)."""
    return Rows(CURRENT_COLUMNS), Rows(VERSION_COLUMNS)


def add_new_resource(
    current: Rows,
    versions: Rows,
    now: datetime,
    method: str,
    resource_type: str,
    resource_id: str,
    patient_id: str | None,
    body: bytes,
) -> None:
    """Version 1 of a new resource (its sealed ``body``) as a current row and a version."""
    current.append((resource_type, resource_id, 1, now, False, patient_id))
    versions.append((resource_type, resource_id, 1, now, method, False, patient_id, body))


def new_resource_statements(current: Rows, versions: Rows) -> list[Statement]:
    """The inserts of resources that do not exist yet (their current rows and first versions),
    one executemany each, for :func:`~medmesh.platform.db.execute_together`."""
    if not current:
        return []
    return [(_INSERT_CURRENT, current), (_INSERT_VERSION, versions)]


class BundleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def compartment_page(
        self,
        patient_id: str,
        *,
        types: Sequence[str] | None,
        since: datetime | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> Sequence[ResourceRow]:
        """Current resources of a patient's compartment (the Patient included), by type then id."""
        r = ResourceRow
        conditions: list[ColumnElement[bool]] = [r.patient_id == patient_id, r.deleted.is_(False)]
        if types:
            conditions.append(r.resource_type.in_(list(types)))
        if since is not None:
            conditions.append(r.last_updated >= since)
        stmt = keyset_page(
            select(r).where(and_(*conditions)), [r.resource_type, r.id], after, limit
        )
        return (await self.session.scalars(stmt)).all()

    async def current_many(self, keys: Sequence[tuple[str, str]]) -> Sequence[ResourceRow]:
        """The current, not deleted rows of ``(type, id)`` keys."""
        if not keys:
            return []
        r = ResourceRow
        stmt = select(r).where(keys_clause(keys), r.deleted.is_(False))
        return (await self.session.scalars(stmt)).all()
