"""Bodies of the time-series queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ReadingOut(BaseModel):
    device_id: str
    reading_id: str
    timestamp: datetime
    metric: str
    value: float
    components: dict[str, Any] | None
    unit: str
    patient: str | None


class ReadingPage(BaseModel):
    data: list[ReadingOut]
    next_after: str | None = Field(description="pass as `after` for the next page; null at the end")


class Bucket(BaseModel):
    start: datetime = Field(description="the interval's start")
    count: int
    min: float
    max: float
    avg: float


class Aggregates(BaseModel):
    metric: str
    unit: str
    interval: int = Field(description="seconds per bucket")
    data: list[Bucket] = Field(description="buckets holding readings, oldest first")
