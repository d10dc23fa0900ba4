"""Where readings enter, over HTTP and MQTT alike: a bounded number admitted at once (beyond
it, :class:`~medmesh.devices.errors.IngestFull`), each batch audited and stored in one
transaction of its own, committed before the caller is answered or the message acknowledged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from medmesh.devices.alerts.evaluation import AlertEvaluator
from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.config import DevicesSettings
from medmesh.devices.delivery.messages import enqueue_observations
from medmesh.devices.errors import BatchTooLarge, IngestFull
from medmesh.devices.ingest.service import IngestOutcome, IngestService
from medmesh.devices.metrics import DevicesMetrics
from medmesh.platform.db import Database, utcnow
from medmesh.platform.origin import RequestOrigin


class ReadingIntake:
    def __init__(
        self,
        database: Database,
        settings: DevicesSettings,
        auditor: DevicesAuditor,
        metrics: DevicesMetrics,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.service = IngestService(settings.future_skew_seconds, settings.reading_retention_days)
        self.evaluator = AlertEvaluator(settings.alert_webhook_url)
        self.auditor = auditor
        self.metrics = metrics
        #: Called after a commit that queued Bundles (wakes the delivery worker).
        self.on_queued = on_queued
        self.destination = settings.phi_url.rstrip("/") + "/fhir"
        self.pending = 0

    def _admit(self, count: int, transport: str) -> None:
        if self.pending and self.pending + count > self.settings.max_pending_readings:
            self.metrics.ingest_full.labels(transport).inc()
            raise IngestFull(self.settings.retry_after_seconds)
        self.pending += count
        self.metrics.pending.set(self.pending)

    def _release(self, count: int) -> None:
        self.pending -= count
        self.metrics.pending.set(self.pending)

    async def store(
        self,
        origin: RequestOrigin,
        entries: Sequence[Any],
        *,
        device_id: str | None,
        actor: str | None,
        transport: str,
    ) -> IngestOutcome:
        """Check and store ``entries``; returns once they are committed (or refused)."""
        if len(entries) > self.settings.max_batch_readings:
            raise BatchTooLarge(
                f"readings: at most {self.settings.max_batch_readings} entries per request"
            )
        self._admit(len(entries), transport)
        try:
            lock = self.database.write_lock if self.database.is_sqlite else contextlib.nullcontext()
            async with lock, self.database.unit_of_work() as session:
                now = utcnow()
                outcome = await self.service.ingest(session, entries, device_id, now)
                await self.evaluator.evaluate(session, outcome.stored, now)
                queued = await enqueue_observations(
                    session,
                    outcome.stored,
                    self.destination,
                    self.settings.delivery_max_entries,
                )
                await self.auditor.record(
                    origin,
                    "devices.readings.ingest",
                    actor=actor,
                    patient_refs=sorted({p for _, p in outcome.stored if p is not None}),
                    transport=transport,
                    stored=outcome.count("stored"),
                    duplicates=outcome.count("duplicate"),
                    rejected=outcome.count("rejected"),
                )
        finally:
            self._release(len(entries))
        for status in ("stored", "duplicate", "rejected"):
            self.metrics.readings.labels(transport, status).inc(outcome.count(status))
        if queued:
            self.on_queued()
        return outcome
