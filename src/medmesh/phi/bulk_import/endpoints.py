"""``$import`` (Bulk Data import): kick-off and status polling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from medmesh.phi.bulk_import.jobs import ImportJobs
from medmesh.phi.components import Call, PhiState
from medmesh.phi.fhir.errors import operation_outcome
from medmesh.phi.fhir.http import fhir_response, read_json_body

router = APIRouter(prefix="/fhir", tags=["fhir: bulk import"])
_OO: dict[str, object] = {
    "description": "OperationOutcome",
    "content": {"application/fhir+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {400: _OO, 401: _OO, 403: _OO, 404: _OO, 415: _OO}


def _jobs(call: Call) -> ImportJobs:
    jobs = call.services.imports
    assert jobs is not None  # built with the app
    return jobs


@router.post("/$import", responses=ERRORS, status_code=202, summary="$import kick-off")
async def import_kick_off(request: Request, call: Call) -> Response:
    """Starts loading NDJSON files (one resource a line, ids kept) that phi fetches from the
    URLs listed in a Parameters body (`inputFormat` `application/fhir+ndjson`, one `input` with
    `type` and `url` per file; URLs only under `MEDMESH_PHI_IMPORT_URL_PREFIXES`). Answers 202
    with `Content-Location`, the status URL to poll. Every line is validated, checked against
    the caller's scopes and audited as a PUT of it would be."""
    body = await read_json_body(request)
    job_id = await _jobs(call).kick_off(call.ctx, body)
    location = f"{call.ctx.base_url}/$import-poll-status/{job_id}"
    outcome = operation_outcome("information", "informational", f"import job {job_id} started")
    response = fhir_response(outcome, 202)
    response.headers["Content-Location"] = location
    return response


@router.get("/$import-poll-status/{job_id}", responses=ERRORS, summary="$import status")
async def import_status(job_id: str, call: Call) -> Response:
    """202 with `X-Progress` while the job runs; 200 when it is done, with each input's counts
    (`output[].count` stored, `rejected`, `lines`) and an OperationOutcome listing the rejected
    lines (file and line number, never their content) and any input that could not be read."""
    status, body = await _jobs(call).status(call.ctx, job_id)
    if status == 202:
        return Response(
            status_code=202, headers={"X-Progress": body["progress"], "Retry-After": "1"}
        )
    return fhir_response(body, 200)


@asynccontextmanager
async def run_imports(app: FastAPI) -> AsyncIterator[None]:
    """Resume unfinished import jobs once the service is up; stop them, then the preparation
    workers, when it stops."""
    phi = PhiState.of(app).phi
    jobs = phi.imports
    if jobs is not None:
        await jobs.resume()
    try:
        yield
    finally:
        if jobs is not None:
            await jobs.stop()
        if phi.preparation is not None:
            await asyncio.to_thread(phi.preparation.close)
