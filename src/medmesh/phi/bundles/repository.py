"""Queries of the bundles domain: many new resources at once, and a patient's compartment in pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.platform.paging import keyset_page


class BundleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_new(
        self, current: list[dict[str, Any]], versions: list[dict[str, Any]]
    ) -> None:
        """Insert resources that do not exist yet (server-assigned ids): two multi-row INSERTs."""
        if current:
            await self.session.execute(insert(ResourceRow), current)
            await self.session.execute(insert(ResourceVersionRow), versions)

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
        stmt = select(r).where(tuple_(r.resource_type, r.id).in_(list(keys)), r.deleted.is_(False))
        return (await self.session.scalars(stmt)).all()
