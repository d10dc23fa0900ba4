"""Events (``evt_``): one per state change, written in the transaction of the change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.events.schemas import event_body
from medmesh.payments.models import EventRow
from medmesh.payments.objects import new_id
from medmesh.payments.rows import insert_of
from medmesh.payments.webhooks.delivery import enqueue_event
from medmesh.platform.db import Statement, execute_together, utcnow


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
    # Ids drawn in one millisecond are random among themselves: sorted, they list in order.
    ids = sorted(new_id("evt") for _ in events)
    rows: list[dict[str, Any]] = [
        {
            "id": event_id,
            "type": kind,
            "object_id": str(obj["id"]),
            "data": {"object": obj},
            "created": now,
        }
        for event_id, (kind, obj) in zip(ids, events, strict=True)
    ]
    await execute_together(session, [*before, insert_of(EventRow, rows)])
    for row in rows:
        await enqueue_event(session, event_body(row["id"], row["type"], row["data"], now))
