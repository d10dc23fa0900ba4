"""Jobs as the API offers them: create, look at, list, cancel, download, realism report."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.platform.db import utcnow
from medmesh.platform.errors import BadRequest, ServiceUnavailable
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import Principal
from medmesh.synthetic.auditing import SyntheticAuditor
from medmesh.synthetic.config import SyntheticSettings
from medmesh.synthetic.errors import JobAlreadyFinished, JobNotFound, OutputNotReady
from medmesh.synthetic.jobs.outputs import JobFolders, OutputFileRef
from medmesh.synthetic.jobs.repository import (
    CANCELLED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobRepository,
)
from medmesh.synthetic.jobs.schemas import JobCreate
from medmesh.synthetic.models import JobRow
from medmesh.synthetic.options import generation_options

MAX_PAGE = 100


def new_job_id() -> str:
    return "job_" + secrets.token_hex(12)


class PhiNotConfigured(ServiceUnavailable):
    code = "phi_not_configured"


class JobService:
    def __init__(
        self, settings: SyntheticSettings, folders: JobFolders, auditor: SyntheticAuditor
    ) -> None:
        self.settings = settings
        self.folders = folders
        self.auditor = auditor

    async def create(
        self, session: AsyncSession, caller: RequestOrigin, request: JobCreate
    ) -> JobRow:
        """Queue a job (a worker picks it up once the request has committed)."""
        settings = self.settings
        options = generation_options(
            request,
            today=datetime.now(UTC).date(),
            max_size=settings.max_job_size,
            limit_name="job limit (MEDMESH_SYNTHETIC_MAX_JOB_SIZE)",
        )
        formats = sorted(set(request.formats))
        if not formats and request.target is None:
            raise BadRequest(
                "a job needs at least one format or a target: nothing would be produced",
                code="nothing_to_do",
            )
        if request.target == "phi" and not settings.phi_client_secret:
            raise PhiNotConfigured(
                "this service has no credentials for phi-service "
                "(set MEDMESH_SYNTHETIC_PHI_CLIENT_SECRET for the client "
                f"{settings.phi_client_id!r})"
            )
        workers = request.workers or 1
        if workers > settings.max_generation_workers:
            raise BadRequest(
                f"workers must be ≤ {settings.max_generation_workers} on this service",
                code="invalid_request",
            )
        principal = caller.verified
        job = JobRow(
            id=new_job_id(),
            owner=principal.sub,
            client_id=principal.client_id or None,
            status=QUEUED,
            cancel_requested=False,
            options=options.to_json(),
            formats=formats,
            target=request.target,
            skip_existing=request.skip_existing,
            workers=workers,
            total=options.size,
            generated=0,
            loaded=0,
            created_at=utcnow(),
        )
        await JobRepository(session).add(job)
        await self.auditor.record(
            caller,
            "synthetic.job.create",
            job_id=job.id,
            size=options.size,
            seed=options.seed,
            formats=formats,
            target=request.target,
        )
        return job

    async def get(self, session: AsyncSession, principal: Principal, job_id: str) -> JobRow:
        job = await JobRepository(session).get_readable(principal, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def page(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        limit: int,
        before: str | None,
        status: str | None,
    ) -> tuple[list[JobRow], bool]:
        """A page of the caller's jobs, newest first, and whether older ones follow."""
        jobs = JobRepository(session)
        after = await self.get(session, principal, before) if before else None
        limit = max(1, min(limit, MAX_PAGE))
        found = await jobs.list_readable(principal, limit=limit + 1, before=after, status=status)
        return found[:limit], len(found) > limit

    async def cancel(
        self, session: AsyncSession, caller: RequestOrigin, job_id: str
    ) -> tuple[JobRow, bool]:
        """Cancel a queued job now, or ask a running one to stop. Returns the job and whether the
        replica running it must be told (after commit). Cancelling a cancelled job is a no-op."""
        job = await self.get(session, caller.verified, job_id)
        jobs = JobRepository(session)
        signal_worker = False
        cancelled_now = job.status == QUEUED and await jobs.cancel_queued(job.id, utcnow())
        if not cancelled_now and job.status in (QUEUED, RUNNING):
            signal_worker = await jobs.request_cancel(job.id)
        await jobs.refresh(job)
        if job.status not in (CANCELLED, RUNNING):
            raise JobAlreadyFinished(f"the job already {job.status}; there is nothing to cancel")
        await self.auditor.record(
            caller, "synthetic.job.cancel", job_id=job.id, status_when_cancelled=job.status
        )
        return job, signal_worker

    async def open_output(
        self, session: AsyncSession, caller: RequestOrigin, job_id: str, name: str
    ) -> OutputFileRef:
        job = await self._succeeded_with_files(session, caller.verified, job_id)
        assert job.output is not None
        found = self.folders.resolve(job.id, job.output, name)
        await self.auditor.record(caller, "synthetic.job.download", job_id=job.id, file=name)
        return found

    async def realism(
        self, session: AsyncSession, principal: Principal, job_id: str
    ) -> dict[str, Any]:
        job = await self._succeeded_with_files(session, principal, job_id)
        assert job.output is not None
        report: dict[str, Any] = job.output.get("realism", {})
        return report

    async def _succeeded_with_files(
        self, session: AsyncSession, principal: Principal, job_id: str
    ) -> JobRow:
        job = await self.get(session, principal, job_id)
        if job.status != SUCCEEDED:
            raise OutputNotReady(f"the job is {job.status}: only a succeeded job has output")
        if not job.output:
            raise OutputNotReady("the job wrote no files (it only loaded phi-service)")
        return job
