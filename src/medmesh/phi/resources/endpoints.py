"""FHIR RESTful interactions on single resources: create, read, vread, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from medmesh.phi.components import Components, Ctx
from medmesh.phi.fhir.errors import VersionConflict
from medmesh.phi.fhir.http import fhir_response, read_json_body, resource_headers, write_response
from medmesh.platform.db import SessionDep

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


@router.post("/{resource_type}", status_code=201, responses=ERRORS, summary="create")
async def create(
    resource_type: str,
    request: Request,
    session: SessionDep,
    ctx: Ctx,
    components: Components,
    if_none_exist: str | None = Header(
        default=None, description="conditional create: a search query"
    ),
) -> Response:
    """Creates a resource with a server-assigned id. With `If-None-Exist`, returns the existing
    match (200) instead when exactly one resource matches, and 412 when several do."""
    body = await read_json_body(request)
    if if_none_exist:
        matches = await components.search.match(session, ctx, resource_type, if_none_exist)
        if len(matches) > 1:
            raise VersionConflict(
                "If-None-Exist matches more than one resource", issue_code="duplicate"
            )
        if matches:
            stored = await components.resources.read(session, ctx, resource_type, matches[0])
            headers = resource_headers(
                stored.resource_type, stored.id, stored.version, stored.last_updated, ctx.base_url
            )
            return write_response(request, stored.resource, 200, headers, "the resource exists")
    stored = await components.resources.create(session, ctx, body, resource_type)
    headers = resource_headers(
        stored.resource_type, stored.id, stored.version, stored.last_updated, ctx.base_url
    )
    return write_response(
        request, stored.resource, 201, headers, f"created {resource_type}/{stored.id}"
    )


@router.get("/{resource_type}/{resource_id}", responses=ERRORS, summary="read")
async def read(
    resource_type: str, resource_id: str, session: SessionDep, ctx: Ctx, components: Components
) -> Response:
    """The current version of a resource (410 once it is deleted)."""
    stored = await components.resources.read(session, ctx, resource_type, resource_id)
    headers = resource_headers(
        stored.resource_type, stored.id, stored.version, stored.last_updated, ctx.base_url
    )
    headers.pop("Location")
    return fhir_response(stored.resource, 200, headers)


@router.get(
    "/{resource_type}/{resource_id}/_history/{version_id}", responses=ERRORS, summary="vread"
)
async def vread(
    resource_type: str,
    resource_id: str,
    version_id: str,
    session: SessionDep,
    ctx: Ctx,
    components: Components,
) -> Response:
    """One version of a resource."""
    stored = await components.resources.vread(session, ctx, resource_type, resource_id, version_id)
    headers = resource_headers(
        stored.resource_type, stored.id, stored.version, stored.last_updated, ctx.base_url
    )
    headers.pop("Location")
    return fhir_response(stored.resource, 200, headers)


@router.put("/{resource_type}/{resource_id}", responses=ERRORS, summary="update")
async def update(
    resource_type: str,
    resource_id: str,
    request: Request,
    session: SessionDep,
    ctx: Ctx,
    components: Components,
    if_match: str | None = Header(
        default=None, description='W/"<version>": refuse (412) if the resource moved on'
    ),
) -> Response:
    """Replaces a resource (a new version); creates it with the client's id when it does not exist (201)."""
    body = await read_json_body(request)
    stored, created = await components.resources.update(
        session, ctx, resource_type, resource_id, body, if_match
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
    "/{resource_type}/{resource_id}", status_code=204, responses=ERRORS, summary="delete"
)
async def delete(
    resource_type: str, resource_id: str, session: SessionDep, ctx: Ctx, components: Components
) -> Response:
    """Deletes a resource (its history stays); later reads answer 410."""
    await components.resources.delete(session, ctx, resource_type, resource_id)
    return Response(status_code=204)
