"""The auth-service's audit trail, for auditors (scope ``audit:read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from medmesh.auth.admin import Auditor
from medmesh.auth.components import AuthState
from medmesh.platform.audit import list_records

router = APIRouter(prefix="/admin/audit-events", tags=["admin: audit"])


class AuditEventOut(BaseModel):
    seq: int
    ts: datetime
    action: str
    outcome: str
    actor: str | None
    client_id: str | None
    resource_type: str | None
    resource_id: str | None
    source_ip: str | None
    request_id: str | None
    details: dict[str, Any]
    hash: str


class AuditEventPage(BaseModel):
    data: list[AuditEventOut]
    next_after_seq: int | None


@router.get("", response_model=AuditEventPage, summary="Search the audit trail")
async def search_audit_events(
    request: Request,
    _: Auditor,
    actor: str | None = Query(default=None, max_length=128),
    action: str | None = Query(default=None, max_length=64),
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int | None = Query(default=None, ge=0),
    limit: int = Query(default=100, ge=1, le=1000),
) -> AuditEventPage:
    """Sign-ins (successful and failed), token issue, refresh-token reuse, revocations and every admin
    change, oldest first. Records are hash-chained; `medmesh audit verify auth` checks the chain."""
    # The trail's own database: on SQLite that is the sibling ``<db>-audit.db`` file.
    rows = await list_records(
        AuthState.of(request.app).audit.database,
        actor=actor,
        action=action,
        since=since,
        until=until,
        after_seq=after_seq,
        limit=limit,
    )
    data = [AuditEventOut.model_validate(r, from_attributes=True) for r in rows]
    return AuditEventPage(data=data, next_after_seq=data[-1].seq if len(data) == limit else None)
