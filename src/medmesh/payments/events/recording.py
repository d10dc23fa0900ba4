"""Events (``evt_``): one per state change, written in the transaction of the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import EventRow
from medmesh.payments.objects import new_id
from medmesh.platform.db import utcnow


async def record_event(session: AsyncSession, kind: str, obj: dict[str, Any]) -> None:
    """Add the event ``kind`` (``payment_intent.succeeded`` ...) carrying ``obj`` as it is now."""
    session.add(
        EventRow(
            id=new_id("evt"),
            type=kind,
            object_id=str(obj["id"]),
            data={"object": obj},
            created=utcnow(),
        )
    )
