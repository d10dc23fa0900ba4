"""Queries of webhook endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import WebhookEndpointRow
from medmesh.payments.paging import ListPage
from medmesh.platform.db import WriteTransaction
from medmesh.platform.outbox import OutboxMessage

#: ``session.info`` key of the enabled endpoints read in the session.
_ENABLED = "payments.enabled_webhook_endpoints"
_ENABLED_QUERY = select(
    WebhookEndpointRow.id, WebhookEndpointRow.url, WebhookEndpointRow.enabled_events
).where(WebhookEndpointRow.status == "enabled")


class EnabledEndpoint(NamedTuple):
    id: str
    url: str
    enabled_events: list[str]


async def enabled_endpoints(tx: WriteTransaction) -> list[EnabledEndpoint]:
    """The enabled endpoints (id, url, enabled events) as the write transaction ``tx`` sees
    them."""
    return [EnabledEndpoint(*row) for row in await tx.all(_ENABLED_QUERY)]


class WebhookEndpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, endpoint_id: str) -> WebhookEndpointRow | None:
        self.session.info.pop(_ENABLED, None)  # the caller may change it
        return await self.session.get(WebhookEndpointRow, endpoint_id)

    async def page(self, page: ListPage) -> Sequence[WebhookEndpointRow]:
        return (
            await self.session.scalars(
                page.narrow(select(WebhookEndpointRow), WebhookEndpointRow.id)
            )
        ).all()

    async def enabled_in_transaction(self) -> Sequence[EnabledEndpoint]:
        """The enabled endpoints (id, url, enabled events), read once per session (the events
        of one change share it) on the session's connection; a change of an endpoint in the
        session reads them again."""
        found: list[EnabledEndpoint] | None = self.session.info.get(_ENABLED)
        if found is None:
            connection = await self.session.connection()
            rows = (await connection.execute(_ENABLED_QUERY)).all()
            found = self.session.info[_ENABLED] = [EnabledEndpoint(*row) for row in rows]
        return found

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
        self.session.info.pop(_ENABLED, None)
        self.session.add(row)
        await self.session.flush()

    async def delete(self, row: WebhookEndpointRow) -> None:
        self.session.info.pop(_ENABLED, None)
        await self.session.delete(row)
        await self.session.flush()
