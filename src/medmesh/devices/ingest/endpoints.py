"""``POST /v1/readings`` (gateways: many devices) and ``POST /v1/devices/{id}/readings``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.devices.components import Components, IngestCaller
from medmesh.devices.errors import InvalidDeviceKey
from medmesh.devices.ingest.schemas import BatchResult, ReadingBatch, ReadingIn
from medmesh.devices.ingest.service import IngestOutcome
from medmesh.devices.openapi import inline_schema
from medmesh.platform.errors import BadRequest

router = APIRouter(tags=["ingest"])
PROBLEM: dict[str, object] = {
    "description": "problem details",
    "content": {"application/problem+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {
    400: PROBLEM,
    401: PROBLEM,
    403: PROBLEM,
    413: PROBLEM,
    503: {**PROBLEM, "description": "too many readings waiting to be stored (see Retry-After)"},
}
DEVICE_KEY = {
    "name": "X-Device-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "the device's key (instead of a bearer token with `devices:ingest`)",
}


def _body(schema: type[ReadingBatch] | type[ReadingIn], *, batch: bool) -> dict[str, Any]:
    content = {"application/json": {"schema": inline_schema(schema)}}
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": content}}
    extra["parameters"] = [DEVICE_KEY]
    if not batch:
        extra["requestBody"]["description"] = '`{"readings": [...]}` or one reading'
    return extra


async def _entries(request: Request, *, single_allowed: bool) -> list[Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    if single_allowed and isinstance(body, dict) and "readings" not in body:
        return [body]
    if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
        raise BadRequest('the body is {"readings": [...]}', code="invalid_request")
    entries: list[Any] = body["readings"]
    return entries


def _result(outcome: IngestOutcome) -> Response:
    """The answer (a :class:`BatchResult`), serialized directly: a batch has thousands of
    entries, and validating the answer again would cost as much as checking them."""
    body = {
        "stored": outcome.count("stored"),
        "duplicates": outcome.count("duplicate"),
        "rejected": outcome.count("rejected"),
        "results": outcome.results,
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.post(
    "/v1/readings",
    summary="send readings of many devices",
    responses=ERRORS,
    openapi_extra=_body(ReadingBatch, batch=True),
)
async def ingest_batch(request: Request, caller: IngestCaller, components: Components) -> Response:
    """Stores a batch of readings, each entry naming its device (with a device key, every entry
    is that device's). Each entry is answered on its own: `stored`, `duplicate` (the device sent
    that `reading_id` before; nothing changes) or `rejected` with a `code` and `message`; the
    valid entries of a mixed batch are stored. Values are converted to canonical UCUM units
    (°F to Cel, [lb_av] to kg, glucose mmol/L to mg/dL) and checked against physiological
    bounds. 200 once every stored reading is durable; 503 with `Retry-After` when ingest is
    full."""
    entries = await _entries(request, single_allowed=False)
    outcome = await components.intake.store(
        caller.origin,
        entries,
        device_id=caller.device_id,
        actor=caller.actor,
        transport="http",
    )
    return _result(outcome)


@router.post(
    "/v1/devices/{device_id}/readings",
    summary="send one device's readings",
    responses=ERRORS,
    response_model=BatchResult,
    openapi_extra=_body(ReadingBatch, batch=False),
)
async def ingest_device(
    device_id: str, request: Request, caller: IngestCaller, components: Components
) -> Response:
    """As `POST /v1/readings` for one device: `{"readings": [...]}` or a single reading; entries
    need not name the device. A device key must be this device's."""
    if caller.device_id is not None and caller.device_id != device_id:
        raise InvalidDeviceKey
    entries = await _entries(request, single_allowed=True)
    outcome = await components.intake.store(
        caller.origin, entries, device_id=device_id, actor=caller.actor, transport="http"
    )
    return _result(outcome)
