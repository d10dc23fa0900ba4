"""Transaction and batch Bundles (``POST /fhir``) and ``Patient/{id}/$everything``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.phi.collection_pacing import bulk_collection_pacing
from medmesh.phi.components import Call
from medmesh.phi.fhir.http import fhir_response, prefer_lenient, read_json_body

router = APIRouter(prefix="/fhir", tags=["fhir: bundles"])
_OO: dict[str, object] = {
    "description": "OperationOutcome",
    "content": {"application/fhir+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {
    400: _OO,
    401: _OO,
    403: _OO,
    404: _OO,
    409: _OO,
    410: _OO,
    412: _OO,
    413: _OO,
    415: _OO,
    422: _OO,
}


def _prefer(request: Request) -> str | None:
    for part in request.headers.get("prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip() == "return":
            return value.strip()
    return None


@router.post("", responses=ERRORS, summary="transaction or batch")
async def process_bundle(request: Request, call: Call) -> Response:
    """Processes a `transaction` (all or nothing) or `batch` (each entry on its own) Bundle and answers
    with the `transaction-response` or `batch-response` Bundle.

    `urn:uuid:` fullUrls get server ids and every reference to them is rewritten; conditional references
    (`Organization?identifier=system|value`) must match exactly one resource; `ifNoneExist` entries point
    at the existing match instead of creating. A failing transaction answers with the failing entry's
    OperationOutcome and stores nothing. `Prefer: return=representation` puts the resources in the answer.
    """
    with bulk_collection_pacing():  # from the parse of the body on (decision 0033)
        body = await read_json_body(request)
        result = await call.services.bundles.process(
            call.session, call.ctx, body, prefer=_prefer(request)
        )
        return fhir_response(result, 200)


router.add_api_route("/", process_bundle, methods=["POST"], include_in_schema=False)


@router.get("/Patient/{patient_id}/$everything", responses=ERRORS, summary="Patient $everything")
async def patient_everything(patient_id: str, request: Request, call: Call) -> Response:
    """The patient and every current resource in its compartment, with the practitioners, organizations,
    locations and medications they reference, as pages of a searchset Bundle (`_count`, `_type`,
    `_since`; follow the `next` link). Only resources the caller may read are included."""
    params = list(request.query_params.multi_items())
    result = await call.services.bundles.everything(
        call.session, call.ctx, patient_id, params, lenient=prefer_lenient(request)
    )
    return fhir_response(result, 200)
