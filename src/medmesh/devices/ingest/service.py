"""Ingest: check each entry, find the devices and the patient assigned at each reading's time,
store the new readings and queue their Observations for phi-service in the same transaction."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.ingest.repository import ReadingRepository
from medmesh.devices.ingest.validation import Reading, Refusal, check_entry


class EntryResult(TypedDict):
    """One entry's answer (the shape of ``schemas.EntryResult``)."""

    index: int
    device_id: str | None
    reading_id: str | None
    status: str
    code: str | None
    message: str | None


@dataclass
class IngestOutcome:
    results: list[EntryResult]
    #: New readings with the patient assigned at their time (None: unassigned, not sent).
    stored: list[tuple[Reading, str | None]] = field(default_factory=list)
    _counts: Counter[str] | None = field(default=None, repr=False)

    def count(self, status: str) -> int:
        """How many entries have this status (counted once, when first asked)."""
        if self._counts is None:
            self._counts = Counter(result["status"] for result in self.results)
        return self._counts[status]


class PatientAtTime:
    """The patient each device was assigned to at a moment (assignments never overlap)."""

    def __init__(self, assignments: Sequence[tuple[str, datetime, datetime | None, str]]) -> None:
        by_device: dict[str, list[tuple[datetime, datetime | None, str]]] = defaultdict(list)
        for device_id, start, end, patient in assignments:
            by_device[device_id].append((start, end, patient))
        #: Per device, its assignments' (start, end, patient) in start order, and the starts.
        self._rows = {k: sorted(v, key=lambda r: r[0]) for k, v in by_device.items()}
        self._starts = {k: [r[0] for r in v] for k, v in self._rows.items()}

    def __call__(self, device_id: str, ts: datetime) -> str | None:
        rows = self._rows.get(device_id)
        if not rows:
            return None
        if len(rows) == 1:
            start, end, patient = rows[0]
            return patient if start <= ts and (end is None or ts < end) else None
        at = bisect.bisect_right(self._starts[device_id], ts) - 1
        if at < 0:
            return None
        _, end, patient = rows[at]
        return patient if end is None or ts < end else None


def _rejected(index: int, raw: Any, refusal: Refusal) -> EntryResult:
    device_id = raw.get("device_id") if isinstance(raw, dict) else None
    reading_id = raw.get("reading_id") if isinstance(raw, dict) else None
    return EntryResult(
        index=index,
        device_id=device_id if isinstance(device_id, str) else None,
        reading_id=reading_id if isinstance(reading_id, str) else None,
        status="rejected",
        code=refusal.code,
        message=refusal.message,
    )


class IngestService:
    def __init__(self, future_skew_seconds: float, retention_days: int = 0) -> None:
        self.skew = timedelta(seconds=future_skew_seconds)
        #: How long readings are kept (None: for ever); an older one is refused.
        self.retention = timedelta(days=retention_days) if retention_days else None

    async def ingest(
        self,
        session: AsyncSession,
        entries: Sequence[Any],
        device_id: str | None,
        now: datetime,
    ) -> IngestOutcome:
        """Store ``entries`` (of ``device_id`` when the caller is bound to one device)."""
        results: list[EntryResult | None] = [None] * len(entries)
        valid: list[tuple[int, Reading]] = []
        earliest = now - self.retention if self.retention is not None else None
        for index, raw in enumerate(entries):
            try:
                valid.append((index, check_entry(raw, device_id, now, self.skew, earliest)))
            except Refusal as error:
                results[index] = _rejected(index, raw, error)
        repository = ReadingRepository(session)
        statuses = await repository.statuses({r.device_id for _, r in valid}) if valid else {}
        active = {device_id for device_id, status in statuses.items() if status == "active"}
        accepted: list[tuple[int, Reading]] = []
        for index, reading in valid:
            if reading.device_id in active:
                accepted.append((index, reading))
                continue
            status = statuses.get(reading.device_id)
            if status is None:
                refusal = Refusal("unknown_device", "device_id: no such device")
            else:
                refusal = Refusal("device_not_active", f"device_id: the device is {status}")
            results[index] = _rejected(index, entries[index], refusal)
        outcome = IngestOutcome(results=[])
        if accepted:
            outcome = await self._store(repository, accepted, results, now)
        outcome.results = [r for r in results if r is not None]
        return outcome

    async def _store(
        self,
        repository: ReadingRepository,
        accepted: list[tuple[int, Reading]],
        results: list[EntryResult | None],
        now: datetime,
    ) -> IngestOutcome:
        stamps = [reading.ts for _, reading in accepted]
        ids = {reading.device_id for _, reading in accepted}
        patient_at = PatientAtTime(await repository.assignments(ids, min(stamps), max(stamps)))
        rows: list[tuple[Any, ...]] = []
        patients: dict[tuple[str, str], str | None] = {}
        for _, reading in accepted:
            key = (reading.device_id, reading.reading_id)
            if key in patients:
                continue
            patient = patients[key] = patient_at(reading.device_id, reading.ts)
            rows.append(
                (
                    reading.device_id,
                    reading.reading_id,
                    reading.ts,
                    reading.metric,
                    reading.value,
                    reading.components,
                    reading.unit,
                    patient,
                    now,
                )
            )
        inserted = await repository.insert_rows(rows)
        await repository.touch(ids, now)
        outcome = IngestOutcome(results=[])
        stored = outcome.stored
        for index, reading in accepted:
            key = (reading.device_id, reading.reading_id)
            status = "duplicate"
            if key in inserted:
                inserted.discard(key)  # a repeat later in the same batch is a duplicate
                stored.append((reading, patients[key]))
                status = "stored"
            results[index] = {
                "index": index,
                "device_id": key[0],
                "reading_id": key[1],
                "status": status,
                "code": None,
                "message": None,
            }
        return outcome
