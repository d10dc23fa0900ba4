"""Bodies of ``/v1/templates``."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from medmesh.devices.ingest.schemas import BloodPressure
from medmesh.devices.normalization.templates import MappingTemplate


class TemplateList(BaseModel):
    data: list[MappingTemplate]


class PreviewSample(BaseModel):
    """A reading as a device would send it (in any unit the metric accepts)."""

    model_config = ConfigDict(extra="forbid")

    value: float | BloodPressure
    unit: str = Field(max_length=32)
    timestamp: AwareDatetime | None = Field(default=None, description="default: now")
    device_id: str = Field(default="dev_example", max_length=40)
    reading_id: str = Field(default="example-1", max_length=128)
    patient: str | None = Field(default=None, max_length=200, description="`Patient/<id>`")


class Preview(BaseModel):
    reading: dict[str, Any] = Field(description="the reading as stored (canonical unit)")
    observation: dict[str, Any] = Field(description="the FHIR R4 Observation the template makes")
