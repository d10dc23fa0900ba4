"""Events (``evt_``): one per state change, written in the transaction of the change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.events.schemas import event_body
from medmesh.payments.models import EventRow
from medmesh.payments.objects import new_id
from medmesh.payments.rows import insert_of
from medmesh.payments.webhooks.delivery import enqueue_event, webhook_messages
from medmesh.payments.webhooks.repository import enabled_endpoints
from medmesh.platform.db import Statement, WriteTransaction, execute_together, utcnow
from medmesh.platform.outbox import enqueue_all


async def record_event(session: AsyncSession, kind: str, obj: dict[str, Any]) -> None:
    """Add the event ``kind`` (``payment_intent.succeeded`` ...) carrying ``obj`` as it is now,
    and queue it for the webhook endpoints that subscribe to it (same transaction)."""
    await record_events(session, [(kind, obj)])


async def record_events(
    session: AsyncSession,
    events: Sequence[tuple[str, dict[str, Any]]],
    before: Sequence[Statement] = (),
) -> None:
    """:func:`record_event` of each (kind, object), in order, the rows in one insert, run in
    one trip after the change's own statements ``before``."""
    now = utcnow()
    rows = _event_rows(events, now)
    await execute_together(session, [*before, insert_of(EventRow, rows)])
    for row in rows:
        await enqueue_event(session, event_body(row["id"], row["type"], row["data"], now))


async def write_events(tx: WriteTransaction, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """:func:`record_events` in a write transaction: the rows in one insert, the webhooks of
    the endpoints enabled in the transaction in one more."""
    now = utcnow()
    rows = _event_rows(events, now)
    await tx.execute(*insert_of(EventRow, rows))
    endpoints = await enabled_endpoints(tx)
    if endpoints:
        messages = [
            message
            for row in rows
            for message in webhook_messages(
                endpoints, event_body(row["id"], row["type"], row["data"], now)
            )
        ]
        await enqueue_all(tx, messages)


def _event_rows(
    events: Sequence[tuple[str, dict[str, Any]]], now: datetime
) -> list[dict[str, Any]]:
    # Ids drawn in one millisecond are random among themselves: sorted, they list in order.
    ids = sorted(new_id("evt") for _ in events)
    return [
        {
            "id": event_id,
            "type": kind,
            "object_id": str(obj["id"]),
            "data": {"object": obj},
            "created": now,
        }
        for event_id, (kind, obj) in zip(ids, events, strict=True)
    ]
