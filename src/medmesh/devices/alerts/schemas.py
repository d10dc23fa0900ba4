"""Bodies of ``/v1/alert-rules`` and ``/v1/alerts``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medmesh.devices.ingest.vitals import METRICS

Comparison = Literal["lt", "le", "gt", "ge"]
Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["open", "acknowledged", "resolved"]


class RuleCreate(BaseModel):
    """A threshold rule (`metric`, `comparison`, `threshold` in the metric's stored unit, held
    `for_seconds` or for `in_a_row` readings; neither: at the first reading) or, with
    `kind: offline`, no reading for `offline_seconds`. For one `patient`, one `device_id`, or
    every device (neither)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    kind: Literal["threshold", "offline"] = "threshold"
    metric: str | None = Field(default=None, max_length=32)
    component: str | None = Field(
        default=None, max_length=32, description="a panel's value (systolic, diastolic)"
    )
    comparison: Comparison | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    for_seconds: float | None = Field(default=None, gt=0, le=86400 * 7)
    in_a_row: int | None = Field(default=None, ge=1, le=10_000)
    offline_seconds: float | None = Field(default=None, ge=1, le=86400 * 30)
    severity: Severity = "warning"
    patient: str | None = Field(default=None, max_length=200)
    device_id: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _complete(self) -> RuleCreate:
        if self.patient is not None and self.device_id is not None:
            raise ValueError("a rule is for a patient or a device, not both")
        if self.kind == "offline":
            if self.offline_seconds is None:
                raise ValueError("an offline rule needs offline_seconds")
            return self
        if self.metric not in METRICS:
            raise ValueError(f"metric: one of {', '.join(METRICS)}")
        if self.comparison is None or self.threshold is None:
            raise ValueError("a threshold rule needs comparison and threshold")
        if self.for_seconds is not None and self.in_a_row is not None:
            raise ValueError("for_seconds or in_a_row, not both")
        parts = METRICS[self.metric].components
        if parts and self.component not in parts:
            raise ValueError(f"component: one of {', '.join(parts)}")
        if not parts and self.component is not None:
            raise ValueError(f"{self.metric} has no components")
        return self


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class RuleView(BaseModel):
    id: str
    name: str
    kind: str
    metric: str | None
    component: str | None
    comparison: str | None
    threshold: float | None
    for_seconds: float | None
    in_a_row: int | None
    offline_seconds: float | None
    severity: str
    patient: str | None
    device_id: str | None
    enabled: bool
    created: datetime


class RuleList(BaseModel):
    data: list[RuleView]


class AlertView(BaseModel):
    id: str
    rule_id: str
    kind: str
    severity: str
    device_id: str
    patient: str | None
    metric: str | None
    status: AlertStatus
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None


class AlertPage(BaseModel):
    data: list[AlertView]
    next_after: str | None
