"""Every query of stored readings: a window of one device's or one patient's readings is a
range scan of the (device, time) or (patient, time) index; on PostgreSQL, of the monthly
partitions the window covers only (the planner prunes the others on ``ts``); on SQLite, of the
chunks that hold them (:mod:`medmesh.devices.readings.chunks`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Delete, Integer, Select, cast, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import DeviceRow, ReadingKeyRow, ReadingRow
from medmesh.devices.readings import chunk_repository
from medmesh.devices.readings.chunks import StoredReading
from medmesh.devices.readings.window import Window
from medmesh.platform.paging import keyset_page

KEYS = (ReadingRow.ts, ReadingRow.device_id, ReadingRow.reading_id)


COLUMNS = (
    ReadingRow.device_id,
    ReadingRow.reading_id,
    ReadingRow.ts,
    ReadingRow.metric,
    ReadingRow.value,
    ReadingRow.components,
    ReadingRow.unit,
    ReadingRow.patient_ref,
    ReadingRow.received,
)


def raw_statement(
    window: Window, after: tuple[datetime, str, str] | None, limit: int
) -> Select[Any]:
    """A page of the window's readings, oldest first, from the rows of ``readings`` (on SQLite
    the view: the plain reading of the chunks)."""
    return keyset_page(select(*COLUMNS).where(*window.where()), KEYS, after, limit)


def aggregate_statement(
    dialect: str, window: Window, interval: int, *, plain: bool = False
) -> Select[tuple[int, int, float, float, float]]:
    """(bucket number, count, min, max, avg) of ``value`` per ``interval`` seconds: from the
    rows of ``readings``, or on SQLite from the window's chunks (``plain``: from the view)."""
    if dialect == "sqlite" and not plain:
        return chunk_repository.aggregate_statement(window, interval)
    bucket: ColumnElement[int]
    if dialect == "postgresql":
        bucket = cast(func.floor(func.extract("epoch", ReadingRow.ts) / interval), Integer)
    else:
        bucket = cast(func.strftime("%s", ReadingRow.ts), Integer) // interval
    labelled = bucket.label("bucket")
    return (
        select(
            labelled,
            func.count(),
            func.min(ReadingRow.value),
            func.max(ReadingRow.value),
            func.avg(ReadingRow.value),
        )
        .where(*window.where())
        .group_by(labelled)
        .order_by(labelled)
    )


class ReadingQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def raw(
        self, window: Window, after: tuple[datetime, str, str] | None, limit: int
    ) -> list[StoredReading]:
        """A page of the window's readings, oldest first, after the (ts, device, reading id)
        key ``after``."""
        if self.session.get_bind().dialect.name == "sqlite":
            return await chunk_repository.raw(self.session, window, after, limit)
        result = await self.session.execute(raw_statement(window, after, limit))
        return [StoredReading(*row) for row in result.all()]

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
        """Delete about ``limit`` of ``device_id``'s readings taken before ``horizon`` (through
        its (device_id, ts) index; on SQLite whole chunks, so at least ``limit`` unless none is
        left); how many."""
        if self.session.get_bind().dialect.name == "sqlite":
            return await chunk_repository.expire(self.session, device_id, horizon, limit)
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
