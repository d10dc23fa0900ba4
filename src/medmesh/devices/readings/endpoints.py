"""Time-series queries: a device's or a patient's readings over a window, raw or aggregated."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from medmesh.devices.components import Components, Reader
from medmesh.devices.patients import canonical_patient_ref
from medmesh.devices.readings.chunks import StoredReading
from medmesh.devices.readings.schemas import Aggregates, ReadingOut, ReadingPage
from medmesh.devices.readings.window import Window
from medmesh.platform.db import SessionDep
from medmesh.platform.errors import BadRequest, Forbidden
from medmesh.platform.origin import RequestOrigin

router = APIRouter(tags=["readings"])
PROBLEM: dict[str, object] = {
    "description": "problem details",
    "content": {"application/problem+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM}
Start = Query(description="the window's start (inclusive)")
End = Query(description="the window's end (exclusive)")
Metric = Query(default=None, max_length=32, description="one metric (heart_rate, spo2 ...)")
Limit = Query(default=1000, ge=1, le=10_000)
After = Query(default=None, max_length=512, description="the `next_after` of the previous page")
Interval = Query(ge=1, le=31 * 86400, description="seconds per bucket (60: per minute)")


def _bound_patient(caller: RequestOrigin) -> str | None:
    """A patient-bound token sees its own patient's readings only."""
    principal = caller.principal
    if principal is None or not principal.patient:
        return None
    return canonical_patient_ref(principal.patient) or "Patient/-"


def _window(
    caller: RequestOrigin,
    *,
    device_id: str | None = None,
    patient_id: str | None = None,
    metric: str | None,
    start: AwareDatetime,
    end: AwareDatetime,
) -> Window:
    patient = None
    if patient_id is not None:
        patient = canonical_patient_ref(patient_id)
        if patient is None:
            raise BadRequest("patient_id: not a FHIR id", code="invalid_patient")
    bound = _bound_patient(caller)
    if bound is not None and patient is not None and bound != patient:
        raise Forbidden("a patient-bound token reads its own patient's readings only")
    return Window(
        device_id=device_id,
        patient_ref=patient,
        metric=metric,
        start=_in_utc(start, "start"),
        end=_in_utc(end, "end"),
        bound_patient=bound,
    )


def _in_utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC; a moment whose UTC time falls outside the years 1 to 9999 is a 400."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadRequest(
            f"{name}: outside the years 1 to 9999 in UTC", code="invalid_window"
        ) from None


def _out(row: StoredReading) -> ReadingOut:
    return ReadingOut(
        device_id=row.device_id,
        reading_id=row.reading_id,
        timestamp=row.ts,
        metric=row.metric,
        value=row.value,
        components=row.components,
        unit=row.unit,
        patient=row.patient_ref,
    )


@router.get("/v1/devices/{device_id}/readings", summary="a device's readings", responses=ERRORS)
async def device_readings(
    device_id: str,
    caller: Reader,
    components: Components,
    session: SessionDep,
    start: AwareDatetime = Start,
    end: AwareDatetime = End,
    metric: str | None = Metric,
    limit: int = Limit,
    after: str | None = After,
) -> ReadingPage:
    """The device's readings in [start, end), oldest first, in canonical units; `limit` at a
    time (`next_after` continues). Audited with the patients they belong to."""
    window = _window(caller, device_id=device_id, metric=metric, start=start, end=end)
    rows, next_after = await components.queries.raw(session, caller, window, after, limit)
    return ReadingPage(data=[_out(r) for r in rows], next_after=next_after)


@router.get(
    "/v1/devices/{device_id}/readings/aggregates",
    summary="a device's readings per interval",
    responses=ERRORS,
)
async def device_aggregates(
    device_id: str,
    caller: Reader,
    components: Components,
    session: SessionDep,
    metric: str = Query(max_length=32, description="the metric to aggregate"),
    interval: int = Interval,
    start: AwareDatetime = Start,
    end: AwareDatetime = End,
) -> Aggregates:
    """Count, min, max and average of the metric's value (a blood pressure's systolic) per
    `interval` seconds, buckets aligned to the Unix epoch; empty buckets are left out."""
    window = _window(caller, device_id=device_id, metric=metric, start=start, end=end)
    return await components.queries.aggregate(session, caller, window, interval)


@router.get("/v1/patients/{patient_id}/readings", summary="a patient's readings", responses=ERRORS)
async def patient_readings(
    patient_id: str,
    caller: Reader,
    components: Components,
    session: SessionDep,
    start: AwareDatetime = Start,
    end: AwareDatetime = End,
    metric: str | None = Metric,
    limit: int = Limit,
    after: str | None = After,
) -> ReadingPage:
    """The readings of every device assigned to the patient at the reading's time."""
    window = _window(caller, patient_id=patient_id, metric=metric, start=start, end=end)
    rows, next_after = await components.queries.raw(session, caller, window, after, limit)
    return ReadingPage(data=[_out(r) for r in rows], next_after=next_after)


@router.get(
    "/v1/patients/{patient_id}/readings/aggregates",
    summary="a patient's readings per interval",
    responses=ERRORS,
)
async def patient_aggregates(
    patient_id: str,
    caller: Reader,
    components: Components,
    session: SessionDep,
    metric: str = Query(max_length=32, description="the metric to aggregate"),
    interval: int = Interval,
    start: AwareDatetime = Start,
    end: AwareDatetime = End,
) -> Aggregates:
    """As for a device, over the patient's readings."""
    window = _window(caller, patient_id=patient_id, metric=metric, start=start, end=end)
    return await components.queries.aggregate(session, caller, window, interval)
