"""Runs queued jobs in processes of their own and keeps their rows true.

Each of ``job_workers`` loops claims the oldest queued job (any replica may: the claim is an
atomic conditional UPDATE), starts its process, saves its progress and heartbeat every
``progress_interval_seconds``, forwards a cancel request, and records how it ended. Output of a
job that did not succeed is deleted, so only a succeeded job has files and a manifest.

A job never stays "running" when nothing runs it: on start a replica fails the jobs it was
running before it restarted, a periodic sweep fails jobs whose replica stopped reporting, and
on shutdown the running jobs are stopped and failed ("interrupted"). None is ever reported
complete: a rerun with the same seed gives the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event

from medmesh.platform.db import Database, utcnow
from medmesh.platform.logging import get_logger
from medmesh.synthetic.config import SyntheticSettings
from medmesh.synthetic.jobs.execution import (
    GENERATED,
    GENERATING,
    LOADED,
    LOADING,
    PHASE,
    PHASES,
    JobOutcome,
    JobSpec,
    ProgressSlots,
    run_job_process,
)
from medmesh.synthetic.jobs.outputs import JobFolders
from medmesh.synthetic.jobs.repository import CANCELLED, FAILED, SUCCEEDED, JobRepository
from medmesh.synthetic.loading import LoadSettings, PhiTarget
from medmesh.synthetic.metrics import SyntheticMetrics
from medmesh.synthetic.models import JobRow

log = get_logger("medmesh.synthetic.jobs")

RERUN = "submit it again (the same seed and options give the same output)"
INTERRUPTED_BY_SHUTDOWN = f"interrupted: the service stopped while the job ran; {RERUN}"
INTERRUPTED_BY_RESTART = f"interrupted: the service restarted while the job ran; {RERUN}"
WORKER_LOST = f"interrupted: the replica running the job stopped reporting; {RERUN}"
#: How often a running job's process is looked at.
FOLLOW_SECONDS = 0.1
#: How long a cancelled job's process may take to stop before it is killed.
CANCEL_GRACE_SECONDS = 10.0


@dataclass
class RunningJob:
    job_id: str
    process: SpawnProcess
    progress: ProgressSlots
    cancel: Event
    receiver: Connection
    phase: str | None = None
    cancel_requested: bool = False
    interrupted: bool = False
    stop_asked_at: float | None = None

    def stop(self, *, by_user: bool) -> None:
        if by_user:
            self.cancel_requested = True
        else:
            self.interrupted = True
        self.cancel.set()
        if self.stop_asked_at is None:
            self.stop_asked_at = time.monotonic()


class JobSupervisor:
    """Claims and runs jobs for one replica (started and stopped with the app)."""

    def __init__(
        self,
        database: Database,
        settings: SyntheticSettings,
        metrics: SyntheticMetrics,
        folders: JobFolders,
    ) -> None:
        self.database = database
        self.settings = settings
        self.metrics = metrics
        self.folders = folders
        self.instance = settings.effective_instance_name
        self._context = multiprocessing.get_context("spawn")
        self._wake = asyncio.Event()
        self._running: dict[str, RunningJob] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        async with self.database.unit_of_work() as session:
            failed = await JobRepository(session).fail_running(
                INTERRUPTED_BY_RESTART, utcnow(), worker=self.instance
            )
        self._forget(failed, "restart")
        for number in range(self.settings.job_workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"synthetic-jobs-{number}"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="synthetic-jobs-sweep"))

    async def stop(self) -> None:
        """Stop the running jobs (they end failed, "interrupted") and the worker loops."""
        self._stopping = True
        self._wake.set()
        for running in self._running.values():
            running.stop(by_user=False)
        workers = self._tasks[:-1]
        self._tasks[-1].cancel()
        if workers:
            _, pending = await asyncio.wait(workers, timeout=CANCEL_GRACE_SECONDS)
            for running in self._running.values():
                running.process.kill()
            if pending:
                await asyncio.wait(pending, timeout=5)
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        """A job was queued: look for it now rather than at the next poll."""
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop the job now if this replica runs it (others see the request in the database)."""
        running = self._running.get(job_id)
        if running is not None:
            running.stop(by_user=True)

    # --- the worker loops -----------------------------------------------------------------

    async def _work(self) -> None:
        while not self._stopping:
            job: JobRow | None = None
            try:
                async with self.database.unit_of_work() as session:
                    job = await JobRepository(session).claim_next(self.instance, utcnow())
            except Exception as exc:
                log.warning("job_claim_failed", error_type=type(exc).__name__)
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_seconds)
                if not self._stopping:
                    self._wake.clear()
                continue
            try:
                await self._run(job)
            except Exception as exc:
                # The job's row stays "running" without a runner: the sweep fails it.
                log.error("job_run_failed", job_id=job.id, error_type=type(exc).__name__)

    async def _sweep(self) -> None:
        """Fail jobs whose replica went silent; keep the queue gauge current."""
        interval = min(self.settings.job_stale_seconds / 4, 15.0)
        while True:
            try:
                now = utcnow()
                silent_since = now - timedelta(seconds=self.settings.job_stale_seconds)
                async with self.database.unit_of_work() as session:
                    jobs = JobRepository(session)
                    failed = await jobs.fail_running(
                        WORKER_LOST, now, silent_since=silent_since, exclude=tuple(self._running)
                    )
                    self.metrics.jobs_queued.set(await jobs.count_queued())
                self._forget(failed, "worker_lost")
            except Exception as exc:
                log.warning("job_sweep_failed", error_type=type(exc).__name__)
            await asyncio.sleep(interval)

    def _forget(self, job_ids: Iterable[str], reason: str) -> None:
        for job_id in job_ids:
            self.folders.remove(job_id)
            self.metrics.jobs_finished.labels(FAILED).inc()
            log.warning("job_interrupted", job_id=job_id, reason=reason)

    # --- one job --------------------------------------------------------------------------

    def _spec(self, job: JobRow) -> JobSpec:
        settings = self.settings
        target = None
        if job.target == "phi":
            target = PhiTarget(
                fhir_url=settings.phi_url.rstrip("/") + "/fhir",
                token_url=settings.effective_token_url,
                client_id=settings.phi_client_id,
                client_secret=settings.phi_client_secret,
                scope=settings.phi_scope,
            )
        return JobSpec(
            job_id=job.id,
            options=job.options,
            formats=tuple(job.formats),
            workers=job.workers,
            out_dir=self.folders.of(job.id),
            target=target,
            load_settings=LoadSettings(
                batch_size=settings.load_batch_size,
                max_entries=settings.load_max_entries,
                concurrency=settings.load_concurrency,
                retries=settings.load_retries,
                backoff_seconds=settings.load_backoff_seconds,
                timeout_seconds=settings.load_timeout_seconds,
            ),
            skip_existing=job.skip_existing,
            log_level=settings.log_level,
            log_file=settings.log_file,
        )

    async def _run(self, job: JobRow) -> None:
        started = time.monotonic()
        try:
            spec = self._spec(job)
        except ValueError as exc:
            await self._finish(job, None, JobOutcome(FAILED, f"cannot run the job: {exc}"), 0.0)
            return
        self.folders.remove(job.id)
        progress = self._context.Array("q", 3)
        progress[PHASE] = GENERATING if spec.formats else LOADING
        cancel = self._context.Event()
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run_job_process,
            args=(spec, progress, cancel, sender),
            name=f"synthetic-{job.id}",
        )
        process.start()
        sender.close()
        running = RunningJob(job.id, process, progress, cancel, receiver)
        if job.cancel_requested:
            running.stop(by_user=True)
        self._running[job.id] = running
        self.metrics.jobs_running.inc()
        log.info("job_started", job_id=job.id, size=job.total, pid=process.pid)
        try:
            outcome = await self._follow(job, running)
        finally:
            del self._running[job.id]
            self.metrics.jobs_running.dec()
        await self._finish(job, running, outcome, time.monotonic() - started)

    async def _follow(self, job: JobRow, running: RunningJob) -> JobOutcome | None:
        """Wait for the job's process to end, saving progress on the way."""
        outcome: JobOutcome | None = None
        saved_at = float("-inf")
        while True:
            ended, outcome = _poll(running)
            if ended:
                break
            now = time.monotonic()
            if now - saved_at >= self.settings.progress_interval_seconds:
                saved_at = now
                await self._save_progress(job, running)
            if (
                running.stop_asked_at is not None
                and now - running.stop_asked_at > CANCEL_GRACE_SECONDS
            ):
                running.process.kill()
            await asyncio.sleep(FOLLOW_SECONDS)
        await asyncio.to_thread(running.process.join, CANCEL_GRACE_SECONDS)
        if running.process.is_alive():
            running.process.kill()
            await asyncio.to_thread(running.process.join, 5)
        running.receiver.close()
        return outcome

    async def _save_progress(self, job: JobRow, running: RunningJob) -> None:
        progress = running.progress
        values: dict[str, object] = {
            "generated": progress[GENERATED],
            "loaded": progress[LOADED],
        }
        now = utcnow()
        phase = PHASES[progress[PHASE]]
        if phase != running.phase:
            values.update(phase=phase, phase_started_at=now)
        try:
            async with self.database.unit_of_work() as session:
                requested = await JobRepository(session).save_progress(
                    job.id, self.instance, now, **values
                )
        except Exception as exc:
            log.warning("job_progress_not_saved", job_id=job.id, error_type=type(exc).__name__)
            return
        running.phase = phase
        if requested is None:
            # A sweep failed the job meanwhile (this replica looked dead): stop working on it.
            running.stop(by_user=False)
        elif requested and not running.cancel_requested:
            running.stop(by_user=True)

    async def _finish(
        self, job: JobRow, running: RunningJob | None, outcome: JobOutcome | None, seconds: float
    ) -> None:
        status, error = _final_status(running, outcome)
        values: dict[str, object] = {"error": error}
        if running is not None:
            values.update(generated=running.progress[GENERATED], loaded=running.progress[LOADED])
        if outcome is not None:
            values["load_summary"] = outcome.load
            if status == SUCCEEDED:
                values["output"] = outcome.manifest
        recorded = False
        try:
            async with self.database.unit_of_work() as session:
                recorded = await JobRepository(session).finish(
                    job.id, self.instance, status, utcnow(), **values
                )
        except Exception as exc:
            log.error("job_end_not_saved", job_id=job.id, error_type=type(exc).__name__)
        if status != SUCCEEDED or not recorded:
            self.folders.remove(job.id)
        if not recorded:
            return
        metrics = self.metrics
        metrics.jobs_finished.labels(status).inc()
        metrics.job_duration.labels(status).observe(seconds)
        if running is not None:
            metrics.patients_generated.labels("job").inc(running.progress[GENERATED])
            metrics.patients_loaded.inc(running.progress[LOADED])
        log.info("job_finished", job_id=job.id, status=status, seconds=round(seconds, 3))


def _poll(running: RunningJob) -> tuple[bool, JobOutcome | None]:
    """(ended, outcome): the outcome once sent, or ended without one when the process died."""
    receiver = running.receiver
    try:
        if receiver.poll():
            outcome: JobOutcome = receiver.recv()
            return True, outcome
    except (EOFError, OSError):
        return True, None
    if running.process.is_alive():
        return False, None
    try:  # it may have sent its outcome just before it ended
        return True, receiver.recv() if receiver.poll() else None
    except (EOFError, OSError):
        return True, None


def _final_status(running: RunningJob | None, outcome: JobOutcome | None) -> tuple[str, str | None]:
    by_user = running is not None and running.cancel_requested
    interrupted = running is not None and running.interrupted
    if outcome is not None and outcome.status == SUCCEEDED:
        return SUCCEEDED, None
    if outcome is not None and outcome.status == FAILED:
        return FAILED, outcome.error
    if by_user:
        return CANCELLED, None
    if interrupted:
        return FAILED, INTERRUPTED_BY_SHUTDOWN
    code = running.process.exitcode if running is not None else None
    return FAILED, f"the job's process ended unexpectedly (exit code {code})"
