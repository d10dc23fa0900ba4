"""FHIR RESTful interactions on single resources: create, read, vread, update, delete.

These are the hottest routes of the store, so they are direct routes (platform.web.direct_routing):
each takes only the Request and builds its context itself, and its parameters are documented
through ``openapi_extra`` exactly as FastAPI would document them from a signature.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.phi.components import request_context
from medmesh.phi.fhir.errors import VersionConflict
from medmesh.phi.fhir.http import fhir_response, read_json_body, resource_headers, write_response
from medmesh.platform.db import session_for
from medmesh.platform.web import direct

router = APIRouter(prefix="/fhir", tags=["fhir: resources"])
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


def _path(name: str) -> dict[str, Any]:
    title = name.replace("_", " ").title()
    return {
        "in": "path",
        "name": name,
        "required": True,
        "schema": {"title": title, "type": "string"},
    }


def _header(name: str, title: str, description: str) -> dict[str, Any]:
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": description}
    return {
        "description": description,
        "in": "header",
        "name": name,
        "required": False,
        "schema": {**schema, "title": title},
    }


def _parameters(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"parameters": list(parameters)}


_TYPE, _ID, _VERSION = _path("resource_type"), _path("resource_id"), _path("version_id")
_IF_NONE_EXIST = _header("if-none-exist", "If-None-Exist", "conditional create: a search query")
_IF_MATCH = _header("if-match", "If-Match", 'W/"<version>": refuse (412) if the resource moved on')


@router.post(
    "/{resource_type}",
    status_code=201,
    responses=ERRORS,
    summary="create",
    openapi_extra=_parameters(_TYPE, _IF_NONE_EXIST),
)
@direct
async def create(request: Request) -> Response:
    """Creates a resource with a server-assigned id. With `If-None-Exist`, returns the existing
    match (200) instead when exactly one resource matches, and 412 when several do."""
    resource_type: str = request.path_params["resource_type"]
    ctx, components = await request_context(request)
    body = await read_json_body(request)
    # Admission once the body is in (see medmesh.phi.admission): a slow body holds no slot.
    async with components.writes.slot(ctx.principal, resource_type, "c"):
        session = session_for(request)
        if_none_exist = request.headers.get("if-none-exist")
        if if_none_exist:
            matches = await components.search.match(session, ctx, resource_type, if_none_exist)
            if len(matches) > 1:
                raise VersionConflict(
                    "If-None-Exist matches more than one resource", issue_code="duplicate"
                )
            if matches:
                stored = await components.resources.read(session, ctx, resource_type, matches[0])
                headers = resource_headers(
                    stored.resource_type,
                    stored.id,
                    stored.version,
                    stored.last_updated,
                    ctx.base_url,
                )
                return write_response(request, stored.resource, 200, headers, "the resource exists")
        stored = await components.resources.create(session, ctx, body, resource_type)
        headers = resource_headers(
            stored.resource_type, stored.id, stored.version, stored.last_updated, ctx.base_url
        )
        return write_response(
            request, stored.resource, 201, headers, f"created {resource_type}/{stored.id}"
        )


@router.get(
    "/{resource_type}/{resource_id}",
    responses=ERRORS,
    summary="read",
    openapi_extra=_parameters(_TYPE, _ID),
)
@direct
async def read(request: Request) -> Response:
    """The current version of a resource (410 once it is deleted)."""
    params = request.path_params
    ctx, components = await request_context(request)
    stored = await components.resources.read_committed(
        request.app.state.database, ctx, params["resource_type"], params["resource_id"]
    )
    headers = resource_headers(
        stored.resource_type, stored.id, stored.version, stored.last_updated, None
    )
    return fhir_response(stored.resource, 200, headers)


@router.get(
    "/{resource_type}/{resource_id}/_history/{version_id}",
    responses=ERRORS,
    summary="vread",
    openapi_extra=_parameters(_TYPE, _ID, _VERSION),
)
@direct
async def vread(request: Request) -> Response:
    """One version of a resource."""
    params = request.path_params
    ctx, components = await request_context(request)
    stored = await components.resources.vread(
        session_for(request),
        ctx,
        params["resource_type"],
        params["resource_id"],
        params["version_id"],
    )
    headers = resource_headers(
        stored.resource_type, stored.id, stored.version, stored.last_updated, None
    )
    return fhir_response(stored.resource, 200, headers)


@router.put(
    "/{resource_type}/{resource_id}",
    responses=ERRORS,
    summary="update",
    openapi_extra=_parameters(_TYPE, _ID, _IF_MATCH),
)
@direct
async def update(request: Request) -> Response:
    """Replaces a resource (a new version); creates it with the client's id when it does not exist (201)."""
    resource_type: str = request.path_params["resource_type"]
    resource_id: str = request.path_params["resource_id"]
    ctx, components = await request_context(request)
    body = await read_json_body(request)
    async with components.writes.slot(ctx.principal, resource_type, "cu"):
        stored, created = await components.resources.update(
            session_for(request),
            ctx,
            resource_type,
            resource_id,
            body,
            request.headers.get("if-match"),
        )
        headers = resource_headers(
            stored.resource_type, stored.id, stored.version, stored.last_updated, ctx.base_url
        )
        return write_response(
            request,
            stored.resource,
            201 if created else 200,
            headers,
            f"{'created' if created else 'updated'} {resource_type}/{resource_id}",
        )


@router.delete(
    "/{resource_type}/{resource_id}",
    status_code=204,
    responses=ERRORS,
    summary="delete",
    openapi_extra=_parameters(_TYPE, _ID),
)
@direct
async def delete(request: Request) -> Response:
    """Deletes a resource (its history stays); later reads answer 410."""
    params = request.path_params
    ctx, components = await request_context(request)
    async with components.writes.slot(ctx.principal, params["resource_type"], "d"):
        await components.resources.delete(
            session_for(request), ctx, params["resource_type"], params["resource_id"]
        )
        return Response(status_code=204)
