"""Response models of the signing-key admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SigningKeyOut(BaseModel):
    kid: str
    alg: str
    status: str
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None
