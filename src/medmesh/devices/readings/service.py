"""Time-series queries of stored readings, raw or aggregated; every query is audited with the
patients whose readings it returned."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.ingest.vitals import METRICS
from medmesh.devices.readings.chunks import StoredReading
from medmesh.devices.readings.repository import ReadingQueries
from medmesh.devices.readings.schemas import Aggregates, Bucket
from medmesh.devices.readings.window import Window
from medmesh.platform.errors import BadRequest
from medmesh.platform.origin import RequestOrigin

MAX_BUCKETS = 100_000


def encode_after(row: StoredReading) -> str:
    raw = orjson.dumps([row.ts.isoformat(), row.device_id, row.reading_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_after(value: str) -> tuple[datetime, str, str]:
    try:
        ts, device_id, reading_id = orjson.loads(
            base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        )
        return datetime.fromisoformat(ts), str(device_id), str(reading_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("after: not a next_after of this API", code="invalid_after") from None


class ReadingQueryService:
    def __init__(self, auditor: DevicesAuditor) -> None:
        self.auditor = auditor

    @staticmethod
    def check_window(window: Window) -> None:
        if window.end <= window.start:
            raise BadRequest("end: must be after start", code="invalid_window")
        if window.metric is not None and window.metric not in METRICS:
            raise BadRequest(f"metric: one of {', '.join(METRICS)}", code="unknown_metric")

    async def raw(
        self,
        session: AsyncSession,
        caller: RequestOrigin,
        window: Window,
        after: str | None,
        limit: int,
    ) -> tuple[list[StoredReading], str | None]:
        self.check_window(window)
        position = decode_after(after) if after is not None else None
        rows = list(await ReadingQueries(session).raw(window, position, limit))
        await self._audit(caller, window, sorted({r.patient_ref for r in rows if r.patient_ref}))
        next_after = encode_after(rows[-1]) if len(rows) == limit else None
        return rows, next_after

    async def aggregate(
        self, session: AsyncSession, caller: RequestOrigin, window: Window, interval: int
    ) -> Aggregates:
        self.check_window(window)
        if window.metric is None:
            raise BadRequest("metric: required with interval", code="metric_required")
        if (window.end - window.start).total_seconds() / interval > MAX_BUCKETS:
            raise BadRequest(
                f"interval: at most {MAX_BUCKETS} buckets per query", code="too_many_buckets"
            )
        buckets = await ReadingQueries(session).aggregate(window, interval)
        patients = [window.patient_ref] if window.patient_ref and buckets else []
        await self._audit(caller, window, patients, interval=interval)
        return Aggregates(
            metric=window.metric,
            unit=METRICS[window.metric].unit,
            interval=interval,
            data=[
                Bucket(
                    start=datetime.fromtimestamp(b * interval, UTC),
                    count=n,
                    min=lo,
                    max=hi,
                    avg=mean,
                )
                for b, n, lo, hi, mean in buckets
            ],
        )

    async def _audit(
        self, caller: RequestOrigin, window: Window, patients: list[str], **details: Any
    ) -> None:
        await self.auditor.record(
            caller,
            "devices.readings.read",
            device_id=window.device_id,
            patient_refs=patients,
            metric=window.metric,
            **details,
        )
