"""Request and response models of the user admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{2,63}$"
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
FHIR_USER = r"^(Practitioner|Patient|Person|RelatedPerson)/[A-Za-z0-9\-.]{1,64}$"
MIN_PASSWORD = 12


def _check_password(value: str) -> str:
    if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        raise ValueError("password contains control characters")
    return value


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME)
    password: str = Field(min_length=MIN_PASSWORD, max_length=256)
    roles: list[str] = Field(default_factory=list, max_length=16)
    patient_id: str | None = Field(default=None, pattern=FHIR_ID)
    fhir_user: str | None = Field(default=None, pattern=FHIR_USER)

    _password = field_validator("password")(_check_password)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=256)
    roles: list[str] | None = Field(default=None, max_length=16)
    patient_id: str | None = Field(default=None, pattern=FHIR_ID)
    fhir_user: str | None = Field(default=None, pattern=FHIR_USER)
    disabled: bool | None = None

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        return None if value is None else _check_password(value)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    roles: list[str]
    patient_id: str | None
    fhir_user: str | None
    disabled: bool
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
    data: list[UserOut]
    next_after: str | None
