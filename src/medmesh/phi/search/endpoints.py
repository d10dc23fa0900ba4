"""FHIR search and history: ``GET /fhir/{type}``, ``POST /fhir/{type}/_search``, ``_history``."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from medmesh.phi.components import Call
from medmesh.phi.fhir.errors import FhirError
from medmesh.phi.fhir.http import fhir_response, prefer_lenient

router = APIRouter(prefix="/fhir", tags=["fhir: search"])

_OO: dict[str, object] = {
    "description": "OperationOutcome",
    "content": {"application/fhir+json": {}},
}
_BUNDLE_SCHEMA = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["searchset", "history"]},
        "total": {"type": "integer"},
        "link": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"relation": {"type": "string"}, "url": {"type": "string"}},
            },
        },
        "entry": {"type": "array", "items": {"type": "object"}},
    },
}


def _responses(description: str) -> dict[int | str, dict[str, object]]:
    return {
        200: {
            "description": description,
            "content": {"application/fhir+json": {"schema": _BUNDLE_SCHEMA}},
        },
        400: _OO,
        401: _OO,
        403: _OO,
        404: _OO,
    }


SEARCH_RESPONSES = _responses("a searchset Bundle")
HISTORY_RESPONSES = _responses("a history Bundle, newest version first")
FORM = "application/x-www-form-urlencoded"

# Documented for the OpenAPI text only: every parameter is read from the query string as FHIR sends it.
Count = Query(default=None, alias="_count", description="page size (default 50, at most 1000)")
Sort = Query(
    default=None,
    alias="_sort",
    description="_id, _lastUpdated or a date parameter; '-' for descending",
)
Include = Query(default=None, alias="_include", description="e.g. Observation:patient")
RevInclude = Query(default=None, alias="_revinclude", description="e.g. Observation:subject")
Summary = Query(default=None, alias="_summary", description="count: only the total")
Total = Query(default=None, alias="_total", description="none | estimate | accurate")
Page = Query(default=None, alias="_page", description="opaque cursor of a next/previous link")
Since = Query(default=None, alias="_since", description="only versions at or after this instant")


@router.get(
    "/_history", response_class=Response, responses=HISTORY_RESPONSES, summary="history (system)"
)
async def system_history(
    request: Request,
    call: Call,
    _count: str | None = Count,
    _since: str | None = Since,
    _page: str | None = Page,
) -> Response:
    """Every version of every resource the caller may read, newest first, paged with `next` links."""
    params = list(request.query_params.multi_items())
    return fhir_response(
        await call.services.search.history(call.session, call.ctx, None, None, params)
    )


@router.get(
    "/{resource_type}", response_class=Response, responses=SEARCH_RESPONSES, summary="search"
)
async def search(
    resource_type: str,
    request: Request,
    call: Call,
    _count: str | None = Count,
    _sort: str | None = Sort,
    _include: str | None = Include,
    _revinclude: str | None = RevInclude,
    _summary: str | None = Summary,
    _total: str | None = Total,
    _page: str | None = Page,
) -> Response:
    """Searches resources of a type with FHIR search parameters (see the CapabilityStatement for each
    type's parameters). Results are a `searchset` Bundle with `self`/`next`/`previous` links whose
    keyset cursors stay correct while data changes. Unknown parameters answer 400, or are ignored
    (with a warning OperationOutcome entry) under `Prefer: handling=lenient`. A patient-bound token
    only finds resources of its own compartment, `_include`d and `_revinclude`d ones too."""
    params = list(request.query_params.multi_items())
    bundle = await call.services.search.search(
        call.session, call.ctx, resource_type, params, lenient=prefer_lenient(request)
    )
    return fhir_response(bundle)


@router.post(
    "/{resource_type}/_search",
    response_class=Response,
    responses=SEARCH_RESPONSES,
    summary="search (POST)",
    openapi_extra={
        "requestBody": {
            "content": {FORM: {"schema": {"type": "object", "additionalProperties": True}}}
        }
    },
)
async def search_post(resource_type: str, request: Request, call: Call) -> Response:
    """The same search with its parameters in an `application/x-www-form-urlencoded` body (and the
    query string), so that they stay out of URLs and server logs."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and content_type != FORM:
        raise FhirError(
            f"send the search parameters as {FORM}", status=415, issue_code="not-supported"
        )
    try:
        form = parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise FhirError("the form body is not UTF-8", status=400, issue_code="structure") from None
    params = list(request.query_params.multi_items()) + form
    bundle = await call.services.search.search(
        call.session, call.ctx, resource_type, params, lenient=prefer_lenient(request)
    )
    return fhir_response(bundle)


@router.get(
    "/{resource_type}/_history",
    response_class=Response,
    responses=HISTORY_RESPONSES,
    summary="history (type)",
)
async def type_history(
    resource_type: str,
    request: Request,
    call: Call,
    _count: str | None = Count,
    _since: str | None = Since,
    _page: str | None = Page,
) -> Response:
    """Every version of the resources of a type the caller may read, newest first."""
    params = list(request.query_params.multi_items())
    return fhir_response(
        await call.services.search.history(call.session, call.ctx, resource_type, None, params)
    )


@router.get(
    "/{resource_type}/{resource_id}/_history",
    response_class=Response,
    responses=HISTORY_RESPONSES,
    summary="history (instance)",
)
async def instance_history(
    resource_type: str,
    resource_id: str,
    request: Request,
    call: Call,
    _count: str | None = Count,
    _since: str | None = Since,
    _page: str | None = Page,
) -> Response:
    """Every version of one resource, newest first; deletions are entries without a resource."""
    params = list(request.query_params.multi_items())
    return fhir_response(
        await call.services.search.history(
            call.session, call.ctx, resource_type, resource_id, params
        )
    )
