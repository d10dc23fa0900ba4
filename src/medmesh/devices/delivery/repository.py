"""The delivery backlog as the outbox table holds it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from medmesh.devices.delivery.messages import DEVICE_TOPIC, TOPIC
from medmesh.platform.db import Database
from medmesh.platform.outbox import OutboxMessage


async def backlog(database: Database) -> tuple[int, int, datetime | None]:
    """Messages waiting, messages parked, and when the oldest waiting one was queued."""
    topics = OutboxMessage.topic.in_((TOPIC, DEVICE_TOPIC))
    waiting = (
        topics,
        OutboxMessage.delivered_at.is_(None),
        OutboxMessage.dead_at.is_(None),
    )
    parked = (topics, OutboxMessage.dead_at.is_not(None))
    async with database.sessionmaker() as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(OutboxMessage.created_at)).where(*waiting)
            )
        ).one()
        dead = (await session.execute(select(func.count()).where(*parked))).scalar_one()
    return int(count), int(dead), oldest
