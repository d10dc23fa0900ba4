"""Ingest: check each entry, find the devices and the patient assigned at each reading's time,
store the new readings and queue their Observations for phi-service in the same transaction."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.ingest.repository import ReadingRepository
from medmesh.devices.ingest.validation import Reading, Refusal, check_entry
from medmesh.devices.models import AssignmentRow


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

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result["status"] == status)


class PatientAtTime:
    """The patient each device was assigned to at a moment (assignments never overlap)."""

    def __init__(self, assignments: Sequence[AssignmentRow]) -> None:
        by_device: dict[str, list[AssignmentRow]] = defaultdict(list)
        for row in assignments:
            by_device[row.device_id].append(row)
        self._rows = {k: sorted(v, key=lambda r: r.start) for k, v in by_device.items()}
        self._starts = {k: [r.start for r in v] for k, v in self._rows.items()}

    def __call__(self, device_id: str, ts: datetime) -> str | None:
        starts = self._starts.get(device_id)
        if not starts:
            return None
        at = bisect.bisect_right(starts, ts) - 1
        if at < 0:
            return None
        row = self._rows[device_id][at]
        return row.patient_ref if row.end is None or ts < row.end else None


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
    def __init__(self, future_skew_seconds: float) -> None:
        self.skew = timedelta(seconds=future_skew_seconds)

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
        for index, raw in enumerate(entries):
            try:
                valid.append((index, check_entry(raw, device_id, now, self.skew)))
            except Refusal as error:
                results[index] = _rejected(index, raw, error)
        repository = ReadingRepository(session)
        devices = await repository.devices({r.device_id for _, r in valid}) if valid else {}
        accepted: list[tuple[int, Reading]] = []
        for index, reading in valid:
            device = devices.get(reading.device_id)
            if device is None:
                refusal = Refusal("unknown_device", "device_id: no such device")
            elif device.status != "active":
                refusal = Refusal("device_not_active", f"device_id: the device is {device.status}")
            else:
                accepted.append((index, reading))
                continue
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
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        patients: dict[tuple[str, str], str | None] = {}
        for _, reading in accepted:
            key = (reading.device_id, reading.reading_id)
            if key in rows:
                continue
            patients[key] = patient_at(reading.device_id, reading.ts)
            rows[key] = {
                "device_id": reading.device_id,
                "reading_id": reading.reading_id,
                "ts": reading.ts,
                "metric": reading.metric,
                "value": reading.value,
                "components": reading.components,
                "unit": reading.unit,
                "patient_ref": patients[key],
                "received": now,
            }
        inserted = await repository.insert_new(list(rows.values()))
        await repository.touch(ids, now)
        outcome = IngestOutcome(results=[])
        for index, reading in accepted:
            key = (reading.device_id, reading.reading_id)
            status = "duplicate"
            if key in inserted:
                inserted.discard(key)  # a repeat later in the same batch is a duplicate
                outcome.stored.append((reading, patients[key]))
                status = "stored"
            results[index] = EntryResult(
                index=index,
                device_id=key[0],
                reading_id=key[1],
                status=status,
                code=None,
                message=None,
            )
        return outcome
