"""A job row as the API shows it: progress with rate and ETA, output files with download URLs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from medmesh.synthetic.jobs.schemas import (
    JobOutput,
    JobProgress,
    JobStatus,
    JobView,
    OutputFile,
)
from medmesh.synthetic.models import JobRow

PREFIX = "/v1/jobs"
MANIFEST = "manifest.json"


def job_url(job_id: str) -> str:
    return f"{PREFIX}/{job_id}"


def output_url(job_id: str, name: str) -> str:
    return f"{PREFIX}/{job_id}/output/{name}"


def _progress(job: JobRow, now: datetime) -> JobProgress:
    done = job.loaded if job.phase == "loading" else job.generated
    rate: float | None = None
    eta: float | None = None
    if job.status == "running" and job.phase_started_at is not None:
        elapsed = (now - job.phase_started_at).total_seconds()
        if elapsed > 0 and done > 0:
            rate = round(done / elapsed, 1)
            eta = round(max(job.total - done, 0) / rate, 1)
    return JobProgress(
        total=job.total,
        generated=job.generated,
        loaded=job.loaded,
        patients_per_second=rate,
        eta_seconds=eta,
    )


def _output(job: JobRow) -> JobOutput | None:
    manifest = job.output
    if job.status != "succeeded" or not manifest:
        return None
    files = [
        OutputFile(
            name=f["url"],
            format=f["format"],
            type=f["type"],
            count=f["count"],
            bytes=f["bytes"],
            sha256=f["sha256"],
            url=output_url(job.id, f["url"]),
        )
        for f in manifest.get("output", [])
    ]
    bundles: dict[str, Any] = manifest.get("bundles") or {}
    pattern = bundles.get("patients")
    return JobOutput(
        patients=manifest["patients"],
        resources=manifest["resources"],
        counts=manifest["counts"],
        generator_version=manifest["generator"]["version"],
        manifest_url=output_url(job.id, MANIFEST),
        realism_url=f"{job_url(job.id)}/realism",
        files=files,
        patient_bundle_url=output_url(job.id, pattern.replace("{index:07d}", "{index}"))
        if isinstance(pattern, str)
        else None,
    )


def job_view(job: JobRow, now: datetime) -> JobView:
    return JobView(
        id=job.id,
        url=job_url(job.id),
        status=cast(JobStatus, job.status),
        phase=cast(Any, job.phase) if job.status == "running" else None,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        seed=int(job.options["seed"]),
        options=job.options,
        formats=list(job.formats),
        target=job.target,
        skip_existing=job.skip_existing,
        workers=job.workers,
        progress=_progress(job, now),
        output=_output(job),
        load=job.load_summary,
        error=job.error,
    )
