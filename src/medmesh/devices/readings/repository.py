"""Every query of stored readings: a window of one device's or one patient's readings is a
range scan of the (device, time) or (patient, time) index."""

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


class ReadingQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def raw(
        self, window: Window, after: tuple[datetime, str, str] | None, limit: int
    ) -> Sequence[ReadingRow]:
        stmt: Select[tuple[ReadingRow]] = select(ReadingRow).where(*window.where())
        return (await self.session.scalars(keyset_page(stmt, KEYS, after, limit))).all()

    async def aggregate(
        self, window: Window, interval: int
    ) -> list[tuple[int, int, float, float, float]]:
        """(bucket number, count, min, max, avg) of ``value`` per ``interval`` seconds."""
        bucket = _bucket(self.session.get_bind().dialect.name, interval).label("bucket")
        stmt = (
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
        return [
            (int(b), int(n), float(lo), float(hi), float(mean))
            for b, n, lo, hi, mean in (await self.session.execute(stmt)).all()
        ]
