"""Every query of stored readings: a window of one device's or one patient's readings is a
range scan of the (device, time) or (patient, time) index; on PostgreSQL, of the monthly
partitions the window covers only (the planner prunes the others on ``ts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import ReadingRow
from medmesh.devices.readings.window import Window
from medmesh.platform.paging import keyset_page

KEYS = (ReadingRow.ts, ReadingRow.device_id, ReadingRow.reading_id)


def _bucket(dialect: str, interval: int) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", ReadingRow.ts) / interval), Integer)
    return cast(func.strftime("%s", ReadingRow.ts), Integer) // interval


def raw_statement(
    window: Window, after: tuple[datetime, str, str] | None, limit: int
) -> Select[tuple[ReadingRow]]:
    """A page of the window's readings, oldest first."""
    return keyset_page(select(ReadingRow).where(*window.where()), KEYS, after, limit)


def aggregate_statement(
    dialect: str, window: Window, interval: int
) -> Select[tuple[int, int, float, float, float]]:
    """(bucket number, count, min, max, avg) of ``value`` per ``interval`` seconds."""
    bucket = _bucket(dialect, interval).label("bucket")
    return (
        select(
            bucket,
            func.count(),
            func.min(ReadingRow.value),
            func.max(ReadingRow.value),
            func.avg(ReadingRow.value),
        )
        .where(*window.where())
        .group_by(bucket)
        .order_by(bucket)
    )


class ReadingQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def raw(
        self, window: Window, after: tuple[datetime, str, str] | None, limit: int
    ) -> Sequence[ReadingRow]:
        return (await self.session.scalars(raw_statement(window, after, limit))).all()

    async def aggregate(
        self, window: Window, interval: int
    ) -> list[tuple[int, int, float, float, float]]:
        """(bucket number, count, min, max, avg) of ``value`` per ``interval`` seconds."""
        stmt = aggregate_statement(self.session.get_bind().dialect.name, window, interval)
        return [
            (int(b), int(n), float(lo), float(hi), float(mean))
            for b, n, lo, hi, mean in (await self.session.execute(stmt)).all()
        ]
