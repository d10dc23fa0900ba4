"""Every query of stored readings: a window of one device's or one patient's readings is a
range scan of the (device, time) or (patient, time) index; on PostgreSQL, of the monthly
partitions the window covers only (the planner prunes the others on ``ts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Delete, Integer, Select, cast, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import DeviceRow, ReadingKeyRow, ReadingRow
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


class ExpiredReadings:
    """The deletes of the retention (``devices/readings/retention.py``), each of at most
    ``limit`` rows: a caller runs each in a short transaction of its own until one deletes
    fewer."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def device_ids(self) -> list[str]:
        """Every registered device (readings belong only to those)."""
        return list(await self.session.scalars(select(DeviceRow.id).order_by(DeviceRow.id)))

    async def delete_readings(self, device_id: str, horizon: datetime, limit: int) -> int:
        """Delete up to ``limit`` of ``device_id``'s readings taken before ``horizon`` (through
        its (device_id, ts) index); how many."""
        doomed = (
            select(ReadingRow.device_id, ReadingRow.reading_id, ReadingRow.ts)
            .where(ReadingRow.device_id == device_id, ReadingRow.ts < horizon)
            .limit(limit)
        )
        key = tuple_(ReadingRow.device_id, ReadingRow.reading_id, ReadingRow.ts)
        return await self._deleted(delete(ReadingRow).where(key.in_(doomed)))

    async def delete_keys(self, horizon: datetime, limit: int) -> int:
        """Delete up to ``limit`` keys of readings taken before ``horizon`` (PostgreSQL's
        ``reading_keys``, through its ``ts`` index); how many."""
        doomed = (
            select(ReadingKeyRow.device_id, ReadingKeyRow.reading_id)
            .where(ReadingKeyRow.ts < horizon)
            .limit(limit)
        )
        key = tuple_(ReadingKeyRow.device_id, ReadingKeyRow.reading_id)
        return await self._deleted(delete(ReadingKeyRow).where(key.in_(doomed)))

    async def _deleted(self, statement: Delete) -> int:
        result = await self.session.execute(statement)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
