"""Request and response models of the role admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from medmesh.auth.clients.schemas import SCOPE_STRING

ROLE_NAME = r"^[a-z][a-z0-9-]{1,63}$"


class RolePut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=255)
    scope: str = Field(max_length=4000, pattern=SCOPE_STRING)


class RoleOut(BaseModel):
    name: str
    description: str
    scope: str
    builtin: bool
    updated_at: datetime
