"""The delivery backlog as the outbox table holds it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from medmesh.devices.delivery.messages import TOPIC
from medmesh.platform.db import Database
from medmesh.platform.outbox import OutboxMessage


async def backlog(database: Database) -> tuple[int, int, datetime | None]:
    """Bundles waiting, Bundles parked, and when the oldest waiting one was queued."""
    waiting = (
        OutboxMessage.topic == TOPIC,
        OutboxMessage.delivered_at.is_(None),
        OutboxMessage.dead_at.is_(None),
    )
    parked = (OutboxMessage.topic == TOPIC, OutboxMessage.dead_at.is_not(None))
    async with database.sessionmaker() as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(OutboxMessage.created_at)).where(*waiting)
            )
        ).one()
        dead = (await session.execute(select(func.count()).where(*parked))).scalar_one()
    return int(count), int(dead), oldest
