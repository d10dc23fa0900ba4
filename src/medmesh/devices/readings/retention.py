"""Readings past the retention (``READING_RETENTION_DAYS``) removed, every
``RETENTION_CHECK_SECONDS`` while the service runs.

On PostgreSQL the monthly partitions wholly before the horizon are detached and dropped (a
month costs a catalog change, not a scan), then the rest of what is older goes row by row:
each device's readings through its (device_id, ts) index, in short transactions of at most
``BATCH`` rows, so ingest never waits long for them; then their keys in ``reading_keys`` (by
its ``ts`` index), so that nothing is left of a removed reading. Ingest refuses readings older
than the horizon (``timestamp_expired``), so a removed month is not made again. Each run that
removes anything leaves one audit record: the horizon, the readings removed, the partitions
dropped (counts and names, never values).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, tuple_

from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.models import DeviceRow, ReadingKeyRow, ReadingRow
from medmesh.devices.partitions import LOCK_KEY, PARENT, Month
from medmesh.platform.background import running
from medmesh.platform.db import Database, utcnow
from medmesh.platform.logging import get_logger
from medmesh.platform.origin import RequestOrigin

log = get_logger("medmesh.devices.retention")
#: The origin of the records of retention runs.
ORIGIN = RequestOrigin(ip="retention")
#: Most rows one delete transaction removes.
BATCH = 5000


@dataclass
class Expired:
    """What one run removed."""

    horizon: datetime
    readings: int = 0
    partitions: list[str] = field(default_factory=list)


class ReadingRetention:
    def __init__(self, database: Database, auditor: DevicesAuditor, days: int) -> None:
        self.database = database
        self.auditor = auditor
        self.days = days

    async def run(self, now: datetime | None = None) -> Expired:
        """Remove the readings taken before ``now`` less the retention; what was removed."""
        expired = Expired((now or utcnow()) - timedelta(days=self.days))
        if self.days == 0:
            return expired
        postgresql = not self.database.is_sqlite
        if postgresql:
            expired.partitions = await self._drop_months(expired.horizon)
        async with self.database.unit_of_work() as session:
            devices = list(await session.scalars(select(DeviceRow.id).order_by(DeviceRow.id)))
        for device_id in devices:
            removed = await self._delete_readings(device_id, expired.horizon)
            if not postgresql:
                expired.readings += removed
        if postgresql:
            expired.readings = await self._delete_keys(expired.horizon)
        if expired.readings or expired.partitions:
            await self.auditor.record(
                ORIGIN,
                "devices.readings.expire",
                horizon=expired.horizon.isoformat(),
                readings=expired.readings,
                partitions=expired.partitions,
            )
        return expired

    async def _drop_months(self, horizon: datetime) -> list[str]:
        """Detach and drop the monthly partitions that end at or before ``horizon``."""
        async with self.database.unit_of_work() as session:
            names = await session.scalars(
                text(
                    "SELECT c.relname FROM pg_catalog.pg_inherits i"
                    " JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'readings'::regclass ORDER BY c.relname"
                )
            )
            months = [month for month in map(Month.of_name, names) if month is not None]
        dropped = []
        for month in sorted(m for m in months if m.end <= horizon):
            async with self.database.unit_of_work() as session:
                # The lock of the partition makers: no batch makes this month meanwhile, and of
                # another replica's run: the month is dropped once.
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                there = await session.scalar(
                    text("SELECT to_regclass(:name)"), {"name": month.name}
                )
                if there is None:
                    continue
                await session.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {month.name}"))
                await session.execute(text(f"DROP TABLE {month.name}"))
            dropped.append(month.name)
        return dropped

    async def _delete_readings(self, device_id: str, horizon: datetime) -> int:
        """Delete ``device_id``'s readings taken before ``horizon``, ``BATCH`` at a time."""
        key = tuple_(ReadingRow.device_id, ReadingRow.reading_id, ReadingRow.ts)
        doomed = (
            select(ReadingRow.device_id, ReadingRow.reading_id, ReadingRow.ts)
            .where(ReadingRow.device_id == device_id, ReadingRow.ts < horizon)
            .limit(BATCH)
        )
        return await self._delete_in_batches(delete(ReadingRow).where(key.in_(doomed)))

    async def _delete_keys(self, horizon: datetime) -> int:
        """Delete the keys of readings taken before ``horizon`` (PostgreSQL's
        ``reading_keys``), ``BATCH`` at a time; how many."""
        key = tuple_(ReadingKeyRow.device_id, ReadingKeyRow.reading_id)
        doomed = (
            select(ReadingKeyRow.device_id, ReadingKeyRow.reading_id)
            .where(ReadingKeyRow.ts < horizon)
            .limit(BATCH)
        )
        return await self._delete_in_batches(delete(ReadingKeyRow).where(key.in_(doomed)))

    async def _delete_in_batches(self, statement: Any) -> int:
        total = 0
        while True:
            async with self.database.unit_of_work() as session:
                result = await session.execute(statement)
            removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
            total += removed
            if removed < BATCH:
                return total


@asynccontextmanager
async def retention_runs(retention: ReadingRetention, interval: float) -> AsyncIterator[None]:
    """Run ``retention`` every ``interval`` seconds while the block runs (not at all when it
    keeps every reading)."""
    if retention.days == 0:
        yield
        return

    async def run() -> None:
        while True:
            try:
                expired = await retention.run()
                if expired.readings or expired.partitions:
                    log.info(
                        "readings_expired",
                        readings=expired.readings,
                        partitions=len(expired.partitions),
                    )
            except Exception as exc:
                log.warning("retention_failed", error=type(exc).__name__)
            await asyncio.sleep(interval)

    async with running(run(), "devices-retention"):
        yield
