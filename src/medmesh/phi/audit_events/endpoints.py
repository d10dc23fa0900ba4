"""``/fhir/AuditEvent``: the phi-service audit trail as FHIR AuditEvents (scope ``audit:read``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from medmesh.phi.audit_events.params import parse_query
from medmesh.phi.audit_events.rendering import audit_event
from medmesh.phi.audit_events.service import find_record, find_records, searchset
from medmesh.phi.components import PhiState, base_url
from medmesh.phi.fhir.errors import ResourceNotFound
from medmesh.phi.fhir.http import fhir_response, prefer_lenient
from medmesh.platform.tokens import Principal, RequireScopes

router = APIRouter(prefix="/fhir", tags=["fhir: AuditEvent"])
AuditReader = Annotated[Principal, Depends(RequireScopes("audit:read"))]
_OO = {"description": "OperationOutcome", "content": {"application/fhir+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {400: _OO, 401: _OO, 403: _OO, 404: _OO}


@router.get("/AuditEvent", responses=ERRORS, summary="search AuditEvents")
async def search_audit_events(
    request: Request,
    _: AuditReader,
    patient: str | None = Query(default=None, description="Patient/<id> or <id>"),
    agent: str | None = Query(default=None, description="the caller's sub"),
    date: list[str] | None = Query(
        default=None, description="e.g. ge2024-05-01 (repeat for a range)"
    ),
    action: str | None = Query(default=None, description="C, R, U, D or E (comma-separated)"),
    subtype: str | None = Query(default=None, description="read, search-type ... or fhir.read ..."),
    count: str | None = Query(default=None, alias="_count", description="page size (max 1000)"),
    cursor: str | None = Query(default=None, alias="_cursor", description="set by the next link"),
) -> Response:
    """Searches the phi-service audit trail: every read, search, write, history, transaction
    entry and `$everything`, as FHIR R4 AuditEvents in a searchset Bundle, oldest first.

    Parameters: `patient` (`Patient/<id>` or `<id>`: records naming that patient), `agent`
    (the caller's `sub`), `date` (with `eq`, `ge`, `gt`, `le`, `lt`; repeat for a range), `action`
    (C, R, U, D, E; comma-separated for several), `subtype` (an interaction code such as `read`
    or `search-type`, or our action name such as `fhir.read`), `_count` (default 50, max 1000)
    and `_cursor` (set by the `next` link). Unknown parameters are refused (400) unless
    `Prefer: handling=lenient`. Needs the scope `audit:read`; reading the trail is not itself
    audited."""
    # The declared parameters document the API; the query string is parsed as a whole so that
    # repeated and unknown parameters are handled the FHIR way.
    query = parse_query(list(request.query_params.multi_items()), lenient=prefer_lenient(request))
    entries = await find_records(PhiState.of(request.app).audit.database, query)
    return fhir_response(searchset(entries, query, base_url(request)))


@router.get("/AuditEvent/{event_id}", responses=ERRORS, summary="read an AuditEvent")
async def read_audit_event(event_id: str, request: Request, _: AuditReader) -> Response:
    """One audit record as an AuditEvent; its id is the record's position in the hash chain."""
    if not (event_id.isascii() and event_id.isdigit()) or len(event_id) > 18:
        raise ResourceNotFound("AuditEvent ids are record numbers")
    entry = await find_record(PhiState.of(request.app).audit.database, int(event_id))
    if entry is None:
        raise ResourceNotFound(f"AuditEvent/{event_id} is not known")
    return fhir_response(audit_event(entry))
