"""FHIR RESTful interactions on single resources: create, read, vread, update, delete, and
``$validate`` at type and instance level.

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

from medmesh.phi.components import Call, PhiCall
from medmesh.phi.fhir.errors import InvalidResource
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


_VALIDATE_MODES = {"create", "update", "delete"}


def _validation_request(body: Any, query_mode: str | None) -> tuple[Any, str | None]:
    """The resource and mode of a ``$validate`` body: a resource, or a Parameters with
    ``resource`` (and ``mode``); the query's ``mode`` when the body names none."""
    if not (isinstance(body, dict) and body.get("resourceType") == "Parameters"):
        return body, query_mode
    resource, mode = None, query_mode
    parameters = body.get("parameter")
    for parameter in parameters if isinstance(parameters, list) else []:
        if not isinstance(parameter, dict):
            continue
        if parameter.get("name") == "resource":
            resource = parameter.get("resource")
        elif parameter.get("name") == "mode" and isinstance(parameter.get("valueCode"), str):
            mode = parameter["valueCode"]
    return resource, mode


async def _validate(request: Request, call: Call, resource_id: str | None) -> Response:
    resource_type: str = request.path_params["resource_type"]
    query_mode = request.query_params.get("mode")
    resource, mode = None, query_mode
    if mode != "delete" or await request.body():
        resource, mode = _validation_request(await read_json_body(request), query_mode)
    if mode != "delete" and resource is None:
        raise InvalidResource("a Parameters body needs a resource parameter", issue_code="required")
    issues = await call.services.resources.validate(
        call.session, call.ctx, resource_type, resource_id, resource, mode
    )
    return fhir_response(r4_outcome_of(issues))


def r4_outcome_of(issues: list[dict[str, Any]]) -> dict[str, Any]:
    """The OperationOutcome of ``$validate``: its issues, or one ``all OK``."""
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "all OK"}]
    return {"resourceType": "OperationOutcome", "issue": issues}


_VALIDATE_DOC = (
    "Validates a resource against FHIR R4 and answers an OperationOutcome (200 whether or not "
    "it is valid; all OK when it is), storing nothing. The body is the resource, or a "
    "Parameters with `resource` (and `mode`). `mode`: `create` (default), `update` (instance "
    "level: the id must match), `delete` (instance level, no body: whether the caller may "
    "delete it). Needs the permission the mode names (c, u or d) on the resource's compartment."
)
_MODE = {
    "in": "query",
    "name": "mode",
    "required": False,
    "schema": {"type": "string", "enum": sorted(_VALIDATE_MODES)},
}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = _documented(path)["parameters"]
    return parameters


@router.post(
    "/{resource_type}/$validate",
    responses=ERRORS,
    summary="$validate (type)",
    description=_VALIDATE_DOC,
    openapi_extra={"parameters": [*_path_parameters(_TYPE), _MODE]},
)
async def validate_type(request: Request, call: Call) -> Response:
    return await _validate(request, call, None)


@router.post(
    "/{resource_type}/{resource_id}/$validate",
    responses=ERRORS,
    summary="$validate (instance)",
    description=_VALIDATE_DOC,
    openapi_extra={"parameters": [*_path_parameters(_INSTANCE), _MODE]},
)
async def validate_instance(request: Request, call: Call) -> Response:
    return await _validate(request, call, request.path_params["resource_id"])
