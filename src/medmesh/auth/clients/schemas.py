"""Request and response models of the client admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

GrantType = Literal["client_credentials", "password", "refresh_token"]
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$"
SCOPE_STRING = r"^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$|^$"


def _default_grants() -> list[GrantType]:
    return ["client_credentials"]


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(default=None, pattern=IDENTIFIER)
    name: str = Field(default="", max_length=128)
    grant_types: list[GrantType] = Field(default_factory=_default_grants, min_length=1)
    scope: str = Field(default="", max_length=4000, pattern=SCOPE_STRING)
    roles: list[str] = Field(default_factory=list, max_length=32)
    audiences: list[str] = Field(default_factory=list, max_length=16)
    access_token_ttl_seconds: int | None = Field(default=None, ge=60, le=86_400)


class ClientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=128)
    grant_types: list[GrantType] | None = Field(default=None, min_length=1)
    scope: str | None = Field(default=None, max_length=4000, pattern=SCOPE_STRING)
    roles: list[str] | None = Field(default=None, max_length=32)
    audiences: list[str] | None = Field(default=None, max_length=16)
    access_token_ttl_seconds: int | None = Field(
        default=None, ge=60, le=86_400, description="null: the server's default lifetime"
    )
    disabled: bool | None = None

    # Left out, a field keeps its value; only the token lifetime has a meaning for null (the
    # server's default). For the others null is refused rather than guessed at.
    @field_validator("name", "grant_types", "scope", "roles", "audiences", "disabled")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null (leave the field out to keep its value)")
        return value


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    client_id: str
    name: str
    grant_types: list[str]
    # The table column is ``scopes``; the API speaks RFC 6749's ``scope``.
    scope: str = Field(validation_alias=AliasChoices("scope", "scopes"))
    roles: list[str]
    audiences: list[str]
    access_token_ttl_seconds: int | None
    disabled: bool
    created_at: datetime
    updated_at: datetime


class ClientWithSecret(ClientOut):
    client_secret: str = Field(description="shown once; only its hash is stored")


class ClientPage(BaseModel):
    data: list[ClientOut]
    next_after: str | None
