"""FHIR RESTful interactions on single resources: create, read, vread, update, delete.

These are the hottest routes of the store, so they are direct routes (platform.web.direct_routing):
each takes only the Request and starts from :meth:`PhiCall.of`; FastAPI cannot see their
parameters, so :func:`_documented` lists them in ``openapi_extra``: the path's own, and the
headers each route reads.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.phi.components import PhiCall
from medmesh.phi.fhir.http import fhir_response, read_json_body, write_response
from medmesh.platform.api_docs import token_required
from medmesh.platform.web import direct

PREFIX = "/fhir"
router = APIRouter(prefix=PREFIX, tags=["fhir: resources"])
_OO = {"description": "OperationOutcome", "content": {"application/fhir+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _OO,
    401: _OO,
    403: _OO,
    404: _OO,
    410: _OO,
    412: _OO,
    422: _OO,
}
_HEADERS = {
    "If-None-Exist": "conditional create: a search query",
    "If-Match": 'W/"<version>": refuse (412) if the resource moved on',
}


def _documented(path: str, *headers: str) -> dict[str, Any]:
    """``openapi_extra`` giving the parameters of ``path`` and the optional ``headers``."""
    parameters: list[dict[str, Any]] = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    parameters += [
        {
            "in": "header",
            "name": header.lower(),
            "required": False,
            "description": _HEADERS[header],
            "schema": {"type": "string"},
        }
        for header in headers
    ]
    # Each verifies its token in the endpoint, so the document says it needs one.
    return {"parameters": parameters, **token_required()}


_TYPE = "/{resource_type}"
_INSTANCE = "/{resource_type}/{resource_id}"
_VERSION = "/{resource_type}/{resource_id}/_history/{version_id}"


@router.post(
    _TYPE,
    status_code=201,
    responses=ERRORS,
    summary="create",
    openapi_extra=_documented(_TYPE, "If-None-Exist"),
)
@direct
async def create(request: Request) -> Response:
    """Creates a resource with a server-assigned id. With `If-None-Exist`, returns the existing
    match (200) instead when exactly one resource matches, and 412 when several do."""
    resource_type: str = request.path_params["resource_type"]
    call = await PhiCall.of(request)
    body = await read_json_body(request)
    stored, created = await call.services.resources.create(
        call.session,
        call.ctx,
        body,
        resource_type,
        if_none_exist=request.headers.get("if-none-exist"),
    )
    headers = stored.headers(call.ctx.base_url)
    if not created:
        return write_response(request, stored.resource, 200, headers, "the resource exists")
    message = f"created {resource_type}/{stored.id}"
    return write_response(request, stored.resource, 201, headers, message)


@router.get(_INSTANCE, responses=ERRORS, summary="read", openapi_extra=_documented(_INSTANCE))
@direct
async def read(request: Request) -> Response:
    """The current version of a resource (410 once it is deleted)."""
    params = request.path_params
    call = await PhiCall.of(request)
    # Read as last committed, outside any session: the request opens none.
    stored = await call.services.resources.read(
        call.database, call.ctx, params["resource_type"], params["resource_id"]
    )
    return fhir_response(stored.resource, 200, stored.headers())


@router.get(_VERSION, responses=ERRORS, summary="vread", openapi_extra=_documented(_VERSION))
@direct
async def vread(request: Request) -> Response:
    """One version of a resource."""
    params = request.path_params
    call = await PhiCall.of(request)
    stored = await call.services.resources.vread(
        call.session,
        call.ctx,
        params["resource_type"],
        params["resource_id"],
        params["version_id"],
    )
    return fhir_response(stored.resource, 200, stored.headers())


@router.put(
    _INSTANCE,
    responses=ERRORS,
    summary="update",
    openapi_extra=_documented(_INSTANCE, "If-Match"),
)
@direct
async def update(request: Request) -> Response:
    """Replaces a resource (a new version); creates it with the client's id when it does not exist (201)."""
    resource_type: str = request.path_params["resource_type"]
    resource_id: str = request.path_params["resource_id"]
    call = await PhiCall.of(request)
    body = await read_json_body(request)
    stored, created = await call.services.resources.update(
        call.session, call.ctx, resource_type, resource_id, body, request.headers.get("if-match")
    )
    message = f"{'created' if created else 'updated'} {resource_type}/{resource_id}"
    status = 201 if created else 200
    return write_response(
        request, stored.resource, status, stored.headers(call.ctx.base_url), message
    )


@router.delete(
    _INSTANCE,
    status_code=204,
    responses=ERRORS,
    summary="delete",
    openapi_extra=_documented(_INSTANCE),
)
@direct
async def delete(request: Request) -> Response:
    """Deletes a resource (its history stays); later reads answer 410."""
    params = request.path_params
    call = await PhiCall.of(request)
    await call.services.resources.delete(
        call.session, call.ctx, params["resource_type"], params["resource_id"]
    )
    return Response(status_code=204)
