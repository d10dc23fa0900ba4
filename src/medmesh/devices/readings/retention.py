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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.partitions import ReadingPartitions
from medmesh.devices.readings.repository import ExpiredReadings
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
        horizon = expired.horizon
        postgresql = not self.database.is_sqlite
        if postgresql:
            expired.partitions = await self._drop_months(horizon)
        async with self.database.unit_of_work() as session:
            devices = await ExpiredReadings(session).device_ids()
        for device_id in devices:
            removed = await self._in_batches(
                lambda r: r.delete_readings(device_id, horizon, BATCH)  # noqa: B023 (awaited here)
            )
            if not postgresql:
                expired.readings += removed
        if postgresql:
            # Every stored reading has its key: the keys count what the partitions held too.
            expired.readings = await self._in_batches(lambda r: r.delete_keys(horizon, BATCH))
        if expired.readings or expired.partitions:
            await self.auditor.record(
                ORIGIN,
                "devices.readings.expire",
                horizon=horizon.isoformat(),
                readings=expired.readings,
                partitions=expired.partitions,
            )
        return expired

    async def _drop_months(self, horizon: datetime) -> list[str]:
        """Drop the monthly partitions that end at or before ``horizon``, each in a
        transaction of its own; their names."""
        async with self.database.unit_of_work() as session:
            months = await ReadingPartitions(session).months()
        dropped = []
        for month in (m for m in months if m.end <= horizon):
            async with self.database.unit_of_work() as session:
                if await ReadingPartitions(session).drop(month):
                    dropped.append(month.name)
        return dropped

    async def _in_batches(self, delete: Callable[[ExpiredReadings], Awaitable[int]]) -> int:
        """Run ``delete`` (of at most ``BATCH`` rows) in transactions of its own until one
        deletes fewer; how many in all."""
        total = 0
        while True:
            async with self.database.unit_of_work() as session:
                removed = await delete(ExpiredReadings(session))
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
