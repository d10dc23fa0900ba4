"""``POST /v1/generate`` and ``POST /v1/realism``: small runs answered in the response."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response, StreamingResponse

from medmesh.synthetic.components import AuthorizedCaller, Components
from medmesh.synthetic.engine import GENERATOR_VERSION
from medmesh.synthetic.generate.schemas import GenerateRequest, RealismAnswer
from medmesh.synthetic.options import GenerationRequest

router = APIRouter(prefix="/v1", tags=["generate"])
PROBLEM: dict[str, object] = {
    "description": "problem details",
    "content": {"application/problem+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM}


@router.post(
    "/generate",
    summary="generate a small run synchronously",
    response_class=Response,
    responses={
        200: {
            "description": "the run, in the format asked for",
            "content": {"application/fhir+json": {}, "application/fhir+ndjson": {}},
        },
        **ERRORS,
    },
)
async def generate(
    body: GenerateRequest, caller: AuthorizedCaller, components: Components
) -> Response:
    """Generates up to `MEDMESH_SYNTHETIC_MAX_SYNC_SIZE` (100) patients and answers with them.

    `format=bundle` (default): a FHIR Bundle of type `collection`; its first entry is the run's
    directory (Organization, Location, Practitioner, PractitionerRole) as a transaction Bundle of
    PUTs, each other entry one patient's transaction Bundle (`urn:uuid:` references). POST each
    entry's resource to a FHIR server's base, the directory first, to load the run.
    `format=ndjson`: `application/fhir+ndjson`, one resource per line, streamed.

    The same seed and options always give the same bytes; the seed used (drawn at random when
    the request has none) is in the `X-Synthetic-Seed` header.
    """
    options, payload = await components.generation.generate(caller, body)
    headers = {
        "X-Synthetic-Seed": str(options.seed),
        "X-Synthetic-Generator-Version": GENERATOR_VERSION,
    }
    if isinstance(payload, bytes):
        return Response(payload, media_type="application/fhir+json", headers=headers)
    return StreamingResponse(payload, media_type="application/fhir+ndjson", headers=headers)


@router.post("/realism", summary="realism report of a run", responses=ERRORS)
async def realism(
    body: GenerationRequest, caller: AuthorizedCaller, components: Components
) -> RealismAnswer:
    """Generates up to `MEDMESH_SYNTHETIC_MAX_REALISM_SIZE` (2,000) patients in memory and
    reports how realistic they are: each condition's prevalence per age band against its target,
    and the vital-sign distributions. A job's report covers its whole run
    (`GET /v1/jobs/{job_id}/realism`)."""
    return await components.generation.realism(caller, body)
