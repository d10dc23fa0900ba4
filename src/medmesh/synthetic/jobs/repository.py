"""Every query of the jobs table.

Reads for a caller go through :meth:`JobRepository.readable`: a principal sees the jobs it
created, an admin sees all. Workers claim and update jobs with conditional UPDATEs (``WHERE
status = ...``), which are atomic on SQLite and PostgreSQL alike, so two replicas never run the
same job and a finished job never changes again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.platform.tokens import Principal
from medmesh.synthetic.models import JobRow

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})
ADMIN_ROLE = "admin"


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- for callers ------------------------------------------------------------------

    @staticmethod
    def readable(principal: Principal) -> Select[tuple[JobRow]]:
        """The jobs ``principal`` may see: its own, or every job for an admin."""
        statement = select(JobRow)
        if ADMIN_ROLE not in principal.roles:
            statement = statement.where(JobRow.owner == principal.sub)
        return statement

    async def add(self, job: JobRow) -> None:
        self.session.add(job)
        await self.session.flush()

    async def get_readable(self, principal: Principal, job_id: str) -> JobRow | None:
        found = await self.session.scalars(self.readable(principal).where(JobRow.id == job_id))
        return found.first()

    async def list_readable(
        self, principal: Principal, *, limit: int, before: JobRow | None, status: str | None
    ) -> list[JobRow]:
        """Newest first; ``before`` continues after that job."""
        statement = self.readable(principal)
        if status is not None:
            statement = statement.where(JobRow.status == status)
        if before is not None:
            statement = statement.where(
                or_(
                    JobRow.created_at < before.created_at,
                    and_(JobRow.created_at == before.created_at, JobRow.id < before.id),
                )
            )
        statement = statement.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        return list((await self.session.scalars(statement)).all())

    async def cancel_queued(self, job_id: str, now: datetime) -> bool:
        """Cancel a job no worker has taken yet; False when it is no longer queued."""
        result = await self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == QUEUED)
            .values(status=CANCELLED, cancel_requested=True, finished_at=now)
        )
        return _changed(result)

    async def request_cancel(self, job_id: str) -> bool:
        """Ask the worker running the job to stop; False when it is no longer running."""
        result = await self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == RUNNING)
            .values(cancel_requested=True)
        )
        return _changed(result)

    async def refresh(self, job: JobRow) -> None:
        await self.session.refresh(job)

    # --- for workers -------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRow | None:
        return await self.session.get(JobRow, job_id)

    async def claim_next(self, worker: str, now: datetime) -> JobRow | None:
        """Take the oldest queued job for ``worker`` (None when there is none left)."""
        candidates = await self.session.scalars(
            select(JobRow.id)
            .where(JobRow.status == QUEUED)
            .order_by(JobRow.created_at, JobRow.id)
            .limit(5)
        )
        for job_id in candidates.all():
            claimed = await self.session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == QUEUED)
                .values(status=RUNNING, worker=worker, started_at=now, heartbeat_at=now)
            )
            if _changed(claimed):
                return await self.session.get(JobRow, job_id, populate_existing=True)
        return None

    async def save_progress(
        self, job_id: str, worker: str, now: datetime, **values: Any
    ) -> bool | None:
        """Record progress (and the heartbeat); the job's ``cancel_requested``, or None when the
        job is no longer this worker's running job."""
        result = await self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == RUNNING, JobRow.worker == worker)
            .values(heartbeat_at=now, **values)
        )
        if not _changed(result):
            return None
        requested = await self.session.scalar(
            select(JobRow.cancel_requested).where(JobRow.id == job_id)
        )
        return bool(requested)

    async def finish(
        self, job_id: str, worker: str, status: str, now: datetime, **values: Any
    ) -> bool:
        """Move this worker's running job to its final ``status``; False when it was not (a
        sweep already failed it)."""
        result = await self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == RUNNING, JobRow.worker == worker)
            .values(status=status, finished_at=now, heartbeat_at=now, **values)
        )
        return _changed(result)

    async def fail_running(
        self,
        message: str,
        now: datetime,
        *,
        worker: str | None = None,
        silent_since: datetime | None = None,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Fail running jobs of ``worker`` (a restarted replica's own), or whose worker has been
        silent since ``silent_since`` (a replica that died), except ``exclude``; their ids."""
        conditions = [JobRow.status == RUNNING]
        if worker is not None:
            conditions.append(JobRow.worker == worker)
        if silent_since is not None:
            conditions.append(JobRow.heartbeat_at < silent_since)
        ids = await self.session.scalars(select(JobRow.id).where(*conditions))
        failed = []
        for job_id in ids.all():
            if job_id in exclude:
                continue
            result = await self.session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, *conditions)
                .values(status=FAILED, error=message, finished_at=now)
            )
            if _changed(result):
                failed.append(job_id)
        return failed

    async def count_queued(self) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(JobRow).where(JobRow.status == QUEUED)
        )
        return int(count or 0)


def _changed(result: Any) -> bool:
    return bool(result.rowcount == 1)
