"""Request and response bodies of the registry (``/v1/devices``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

DeviceStatus = Literal["active", "inactive", "retired"]
_TEXT = Field(default=None, max_length=256)


class DeviceType(BaseModel):
    """The device's kind as a SNOMED CT concept (e.g. 706767009 |Patient data recorder|)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6,18}$", description="SNOMED CT concept id")
    display: str | None = Field(default=None, max_length=256)


class DeviceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    udi: str | None = Field(default=None, max_length=256, description="UDI carrier (HRF)")
    manufacturer: str | None = _TEXT
    model: str | None = _TEXT
    serial_number: str | None = _TEXT
    type: DeviceType | None = None
    firmware_version: str | None = Field(default=None, max_length=64)


class DeviceCreate(DeviceFields):
    status: DeviceStatus = "active"


class DeviceUpdate(DeviceFields):
    """The fields to change (absent ones are kept)."""

    status: DeviceStatus | None = None


class KeyView(BaseModel):
    id: str
    created: datetime
    revoked: datetime | None


class NewKey(KeyView):
    key: str = Field(description="the device key; shown this once, only its hash is stored")


class AssignmentView(BaseModel):
    id: str
    device_id: str
    patient: str = Field(description="`Patient/<id>` in phi-service")
    start: datetime
    end: datetime | None


class DeviceView(DeviceFields):
    id: str
    status: DeviceStatus
    created: datetime
    updated: datetime
    last_seen: datetime | None
    assignment: AssignmentView | None = Field(description="the open assignment, if any")


class DeviceCreated(DeviceView):
    credential: NewKey


class DevicePage(BaseModel):
    data: list[DeviceView]
    next_after: str | None


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient: str = Field(
        min_length=1, max_length=200, description="`Patient/<id>` (or the bare id) in phi-service"
    )
    start: AwareDatetime | None = Field(default=None, description="default: now")
    end: AwareDatetime | None = None


class AssignmentEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    end: AwareDatetime | None = Field(default=None, description="default: now")


class AssignmentList(BaseModel):
    data: list[AssignmentView]


class KeyList(BaseModel):
    data: list[KeyView]
