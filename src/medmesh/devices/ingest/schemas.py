"""Bodies of ``/v1/readings``: the request is parsed entry by entry (a bad entry is refused on
its own), so these models describe it for OpenAPI and shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class BloodPressure(BaseModel):
    systolic: float
    diastolic: float


class ReadingIn(BaseModel):
    device_id: str | None = Field(
        default=None,
        max_length=40,
        description="the device (required in `POST /v1/readings` with a service token)",
    )
    reading_id: str = Field(
        max_length=128,
        description="the device's own id of the reading: the same id again is a duplicate",
    )
    timestamp: datetime = Field(description="when it was measured (RFC 3339 with an offset)")
    metric: Literal[
        "heart_rate",
        "spo2",
        "blood_pressure",
        "body_temperature",
        "respiratory_rate",
        "body_weight",
        "glucose",
        "steps",
    ]
    value: float | BloodPressure
    unit: str = Field(description="UCUM code, e.g. `/min`, `%`, `mm[Hg]`, `Cel`, `[degF]`")


class ReadingBatch(BaseModel):
    readings: list[ReadingIn]


EntryStatus = Literal["stored", "duplicate", "rejected"]


class EntryResult(BaseModel):
    index: int = Field(description="the entry's position in `readings`")
    device_id: str | None
    reading_id: str | None
    status: EntryStatus
    code: str | None = Field(default=None, description="why it was rejected")
    message: str | None = None


class BatchResult(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    results: list[EntryResult]
