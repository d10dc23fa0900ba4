"""Events (``evt_``): one per state change, written in the transaction of the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.events.schemas import event_object
from medmesh.payments.models import EventRow
from medmesh.payments.objects import new_id
from medmesh.payments.webhooks.delivery import enqueue_event
from medmesh.platform.db import utcnow


async def record_event(session: AsyncSession, kind: str, obj: dict[str, Any]) -> None:
    """Add the event ``kind`` (``payment_intent.succeeded`` ...) carrying ``obj`` as it is now,
    and queue it for the webhook endpoints that subscribe to it (same transaction)."""
    row = EventRow(
        id=new_id("evt"),
        type=kind,
        object_id=str(obj["id"]),
        data={"object": obj},
        created=utcnow(),
    )
    session.add(row)
    await enqueue_event(session, event_object(row))
