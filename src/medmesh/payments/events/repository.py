"""Queries of events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import EventRow
from medmesh.payments.paging import ListPage


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, event_id: str) -> EventRow | None:
        return await self.session.get(EventRow, event_id)

    async def page(self, page: ListPage, kind: str | None) -> Sequence[EventRow]:
        stmt = select(EventRow)
        if kind is not None:
            stmt = stmt.where(EventRow.type == kind)
        return (await self.session.scalars(page.narrow(stmt, EventRow.id))).all()
