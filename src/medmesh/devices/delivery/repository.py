"""The delivery backlog as the outbox table holds it, and the readings a message names."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.delivery.messages import DEVICE_TOPIC, TOPIC, reading_fields
from medmesh.devices.models import ReadingRow
from medmesh.devices.readings import chunk_repository
from medmesh.devices.readings.chunks import StoredReading
from medmesh.devices.readings.repository import COLUMNS
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


async def queued_readings(session: AsyncSession, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The readings of a queued message, as ``reading_fields`` gives them, in its order.

    A message names them by ``reading_keys``; one queued before messages did so carries them
    as ``readings``."""
    if "readings" in payload:
        readings: list[dict[str, Any]] = payload["readings"]
        return readings
    keys = [(device_id, reading_id) for device_id, reading_id in payload["reading_keys"]]
    rows = await stored_readings(session, keys)
    return [reading_fields(rows[key], rows[key].patient_ref) for key in keys if key in rows]


async def stored_readings(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredReading]:
    """The stored readings of these (device id, reading id) keys."""
    if session.get_bind().dialect.name == "sqlite":
        return await chunk_repository.stored(session, keys)
    found: dict[tuple[str, str], StoredReading] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        stmt = select(*COLUMNS).where(tuple_(ReadingRow.device_id, ReadingRow.reading_id).in_(part))
        for row in (await session.execute(stmt)).all():
            reading = StoredReading(*row)
            found[(reading.device_id, reading.reading_id)] = reading
    return found
