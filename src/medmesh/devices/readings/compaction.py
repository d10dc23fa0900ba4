"""The chunks of readings on SQLite merged, every ``READING_COMPACTION_SECONDS`` while the
service runs: a device that sends a reading at a time leaves a chunk a reading, which a window
query reads one by one; once the hour is over its chunks become one
(:func:`medmesh.devices.readings.chunk_repository.compact`, at most ``chunks.MAX_MERGED``
readings a chunk). Each short write transaction merges at most ``HOURS`` hours; nothing a
reader sees changes. PostgreSQL keeps rows: there it does nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from prometheus_client import Counter

from medmesh.devices.readings import chunk_repository
from medmesh.platform.background import running
from medmesh.platform.db import Database, utcnow
from medmesh.platform.logging import get_logger

log = get_logger("medmesh.devices.compaction")
#: Most hours (of one device, patient, metric and unit) one transaction merges.
HOURS = 50


class ReadingCompaction:
    def __init__(self, database: Database, merged: Counter | None = None) -> None:
        self.database = database
        #: Counts the chunks merged away (``medmesh_devices_reading_chunks_merged_total``).
        self.merged = merged
        #: Every chunk up to this id was looked at after its hour was over.
        self.seen = 0

    async def run(self, now: datetime | None = None) -> int:
        """Merge the chunks of the hours over before ``now`` stored since the last run; how
        many chunks were merged away."""
        if not self.database.is_sqlite:
            return 0
        moment = now or utcnow()
        merged = 0
        while True:
            async with self.database.unit_of_work() as session:
                done = await chunk_repository.compact(session, self.seen, moment, HOURS)
            self.seen = done.seen
            merged += done.merged
            if self.merged is not None and done.merged:
                self.merged.inc(done.merged)
            if not done.more:
                return merged


@asynccontextmanager
async def compaction_runs(compaction: ReadingCompaction, interval: float) -> AsyncIterator[None]:
    """Run ``compaction`` every ``interval`` seconds while the block runs (not at all on
    PostgreSQL or when ``interval`` is 0)."""
    if interval == 0 or not compaction.database.is_sqlite:
        yield
        return

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                merged = await compaction.run()
                if merged:
                    log.info("reading_chunks_merged", chunks=merged)
            except Exception as exc:
                log.warning("compaction_failed", error=type(exc).__name__)

    async with running(run(), "devices-compaction"):
        yield
