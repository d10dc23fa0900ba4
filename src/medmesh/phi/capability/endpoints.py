"""``/fhir/metadata`` and ``/fhir/.well-known/smart-configuration`` (both public)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.phi.capability.smart import smart_configuration
from medmesh.phi.capability.statement import capability_statement, served_routes
from medmesh.phi.components import PhiState, base_url

router = APIRouter(prefix="/fhir", tags=["fhir: capabilities"])
_STARTED = datetime.now(UTC)


@router.get("/metadata", summary="capabilities")
async def metadata(request: Request) -> Response:
    """The server's CapabilityStatement: the resource types, interactions, search parameters,
    `_include`/`_revinclude` targets and operations this server really supports, and how to get a
    token (SMART-on-FHIR, pointing at the auth-service). Public: no token needed."""
    base = base_url(request)
    state = PhiState.of(request.app)
    cache = state.capability_statements
    body = cache.get(base)
    if body is None:
        statement = capability_statement(
            served_routes(request.app.openapi()),
            base_url=base,
            issuer=state.settings.issuer,
            version=request.app.version,
            published=_STARTED,
        )
        body = cache[base] = orjson.dumps(statement)
    # Audited like every FHIR interaction (fhir.capabilities; the caller when a token came).
    await state.phi.auditor.record_capabilities(request)
    return Response(body, media_type="application/fhir+json")


@router.get("/.well-known/smart-configuration", summary="SMART configuration")
async def smart_config(request: Request) -> Response:
    """SMART App Launch configuration: where to get tokens (the auth-service's token endpoint),
    its JWKS, the grant types, client authentication methods, scopes and SMART capabilities this
    deployment supports. Public: no token needed."""
    settings = PhiState.of(request.app).settings
    document = smart_configuration(settings.issuer, settings.effective_jwks_url)
    return Response(orjson.dumps(document), media_type="application/json")
