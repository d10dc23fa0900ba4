"""Queries of webhook endpoints."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import WebhookEndpointRow
from medmesh.payments.paging import ListPage
from medmesh.platform.outbox import OutboxMessage


class WebhookEndpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, endpoint_id: str) -> WebhookEndpointRow | None:
        return await self.session.get(WebhookEndpointRow, endpoint_id)

    async def page(self, page: ListPage) -> Sequence[WebhookEndpointRow]:
        return (
            await self.session.scalars(
                page.narrow(select(WebhookEndpointRow), WebhookEndpointRow.id)
            )
        ).all()

    async def enabled(self) -> Sequence[WebhookEndpointRow]:
        stmt = select(WebhookEndpointRow).where(WebhookEndpointRow.status == "enabled")
        return (await self.session.scalars(stmt)).all()

    async def deliveries(self, endpoint_id: str, limit: int) -> Sequence[OutboxMessage]:
        """The endpoint's queued and past deliveries, newest first."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.dedup_key.like(f"%:{endpoint_id}"))
            .order_by(OutboxMessage.created_at.desc())
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def add(self, row: WebhookEndpointRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def delete(self, row: WebhookEndpointRow) -> None:
        await self.session.delete(row)
        await self.session.flush()
