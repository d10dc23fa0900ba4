"""``/v1/jobs``: runs too large to answer synchronously, their progress, output and report."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Query
from starlette.responses import FileResponse, Response

from medmesh.platform.db import SessionDep, utcnow
from medmesh.synthetic.components import AuthorizedCaller, CanGenerate, Components
from medmesh.synthetic.jobs.schemas import JobCreate, JobPage, JobStatus, JobView
from medmesh.synthetic.jobs.views import PREFIX, job_url, job_view

router = APIRouter(prefix=PREFIX, tags=["jobs"])
PROBLEM: dict[str, object] = {
    "description": "problem details",
    "content": {"application/problem+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {
    400: PROBLEM,
    401: PROBLEM,
    403: PROBLEM,
    404: PROBLEM,
    409: PROBLEM,
}


@router.post(
    "",
    status_code=202,
    summary="start a job",
    responses={**ERRORS, 503: PROBLEM},
)
async def create_job(
    body: JobCreate,
    caller: AuthorizedCaller,
    components: Components,
    session: SessionDep,
    background: BackgroundTasks,
    response: Response,
) -> JobView:
    """Queues a run of up to `MEDMESH_SYNTHETIC_MAX_JOB_SIZE` patients and answers 202 with the
    job (`Location` is its URL). It writes the `formats` asked for (`ndjson`, `bundle`, `csv`)
    and, with `target: "phi"`, loads every patient into phi-service (a service token, packed
    transaction Bundles, retries that never duplicate). Follow it with `GET /v1/jobs/{job_id}`."""
    job = await components.jobs.create(session, caller, body)
    background.add_task(components.supervisor.wake)  # after the commit: the job is visible
    response.headers["Location"] = job_url(job.id)
    return job_view(job, utcnow())


@router.get("", summary="list jobs", responses=ERRORS)
async def list_jobs(
    principal: CanGenerate,
    components: Components,
    session: SessionDep,
    limit: int = Query(default=20, ge=1, le=100),
    before: str | None = Query(default=None, max_length=40, description="a job id: older ones"),
    status: JobStatus | None = Query(default=None),
) -> JobPage:
    """The caller's jobs (every job for an admin), newest first."""
    jobs, has_more = await components.jobs.page(
        session, principal, limit=limit, before=before, status=status
    )
    now = utcnow()
    next_url = None
    if has_more:
        next_url = f"{PREFIX}?limit={limit}&before={jobs[-1].id}"
        next_url += f"&status={status}" if status else ""
    return JobPage(data=[job_view(j, now) for j in jobs], has_more=has_more, next_url=next_url)


@router.get("/{job_id}", summary="a job: status, progress, output files", responses=ERRORS)
async def get_job(
    job_id: str, principal: CanGenerate, components: Components, session: SessionDep
) -> JobView:
    """Status (`queued`, `running`, `succeeded`, `failed`, `cancelled`), progress with rate and
    ETA, and for a succeeded job the counts and every output file with its SHA-256 and URL."""
    return job_view(await components.jobs.get(session, principal, job_id), utcnow())


@router.post(
    "/{job_id}/cancel",
    summary="cancel a job",
    responses={**ERRORS, 202: {"description": "the running job was asked to stop"}},
)
async def cancel_job(
    job_id: str,
    caller: AuthorizedCaller,
    components: Components,
    session: SessionDep,
    background: BackgroundTasks,
    response: Response,
) -> JobView:
    """A queued job is cancelled at once (200). A running job is asked to stop (202): it ends
    `cancelled` within seconds, and its files are deleted, so a cancelled job never leaves
    output marked complete. 409 when the job already succeeded or failed."""
    job, signal_worker = await components.jobs.cancel(session, caller, job_id)
    if signal_worker:
        background.add_task(components.supervisor.cancel, job.id)
        response.status_code = 202
    return job_view(job, utcnow())


@router.get(
    "/{job_id}/output/{name:path}",
    summary="download an output file",
    response_class=FileResponse,
    responses={
        200: {
            "description": "the file, streamed",
            "content": {
                "application/fhir+ndjson": {},
                "application/fhir+json": {},
                "text/csv": {},
                "application/json": {},
            },
        },
        **ERRORS,
    },
)
async def download_output(
    job_id: str, name: str, caller: AuthorizedCaller, components: Components, session: SessionDep
) -> FileResponse:
    """A file of a succeeded job's output, as its manifest names it (`manifest.json`,
    `ndjson/Patient.ndjson`, `fhir/patient-0000042.json` ...). `Repr-Digest` carries its
    SHA-256 when the manifest lists it; byte ranges are supported."""
    found = await components.jobs.open_output(session, caller, job_id, name)
    headers: dict[str, str] = {}
    if found.sha256:
        digest = base64.b64encode(bytes.fromhex(found.sha256)).decode()
        headers["Repr-Digest"] = f"sha-256=:{digest}:"
    return FileResponse(
        found.path,
        media_type=found.media_type,
        filename=found.path.name,
        headers=headers,
    )


@router.get("/{job_id}/realism", summary="realism report of a job's run", responses=ERRORS)
async def job_realism(
    job_id: str, principal: CanGenerate, components: Components, session: SessionDep
) -> dict[str, Any]:
    """The realism report of the whole run (also in its `manifest.json`): each condition's
    prevalence per age band against its target, and the vital-sign distributions."""
    return await components.jobs.realism(session, principal, job_id)
