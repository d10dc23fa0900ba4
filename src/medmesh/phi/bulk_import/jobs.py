"""``$import`` jobs: kicked off by a request, run in the service, followed by polling.

A kick-off is checked (the body, every URL under an allowed prefix, the caller's permission to
create each listed type), stored as a row and answered 202 at once; the job then fetches each
input and stores its lines with :class:`~medmesh.phi.bulk_import.importer.NdjsonImporter`
under the caller's rights. Each chunk's progress is written in the chunk's own transaction, so
after a crash the job reports exactly what is stored; a service that starts again goes on with
every unfinished job from the line after the last committed chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.access.consent import ConsentRegistry
from medmesh.phi.access.policy import AccessDenied, AccessPolicy
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.bulk_import.importer import CHUNK_LINES, NdjsonImporter
from medmesh.phi.bulk_import.kickoff import parse_kickoff
from medmesh.phi.bulk_import.models import ImportJobRow
from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bulk_import.preparation import Line
from medmesh.phi.bulk_import.progress import FileProgress, outcome_of
from medmesh.phi.bulk_import.repository import save_progress
from medmesh.phi.collection_pacing import bulk_collection_pacing
from medmesh.phi.config import PhiSettings
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.errors import ResourceNotFound
from medmesh.phi.fhir.types import fhir_instant
from medmesh.phi.resources.service import ResourceService
from medmesh.platform.db import Database, utcnow
from medmesh.platform.ids import uuid7_hex
from medmesh.platform.logging import get_logger
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import Principal, ScopeSet

log = get_logger("medmesh.phi.bulk_import")
FETCH_TIMEOUT_SECONDS = 60.0


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    pending = b""
    async for data in response.aiter_bytes():
        pending += data
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line
    if pending:
        yield pending


async def _chunks(
    lines: AsyncIterator[bytes], index: int, after: int, size: int
) -> AsyncIterator[tuple[int, list[Line]]]:
    """The lines of input ``index`` after line ``after``, ``size`` at a time."""
    chunk: list[Line] = []
    number = 0
    async for line in lines:
        number += 1
        if number <= after:
            continue
        chunk.append((number, line))
        if len(chunk) >= size:
            yield index, chunk
            chunk = []
    if chunk:
        yield index, chunk


class ImportJobs:
    """Kicks off, runs and reports ``$import`` jobs of one phi app."""

    def __init__(
        self,
        settings: PhiSettings,
        database: Database,
        resources: ResourceService,
        auditor: PhiAuditor,
        consents: ConsentRegistry,
        *,
        chunk_lines: int = CHUNK_LINES,
        preparation: PreparationPool | None = None,
    ) -> None:
        self.settings = settings
        #: The app's preparation workers (they outlive a job: the app stops them).
        self.preparation = preparation
        self.database = database
        self.resources = resources
        self.auditor = auditor
        self.consents = consents
        self.chunk_lines = chunk_lines
        self.prefixes = [p.strip() for p in settings.import_url_prefixes.split(",") if p.strip()]
        self._tasks: set[asyncio.Task[None]] = set()
        #: Transport of the fetches (tests hand in one that reaches an app in process).
        self.transport: httpx.AsyncBaseTransport | None = None

    # --- the kick-off and the poll ------------------------------------------------------------

    async def kick_off(self, ctx: FhirContext, body: Any) -> str:
        """Check and store a job, start it; returns its id."""
        inputs = parse_kickoff(body, self.prefixes)
        for item in inputs:
            if not ctx.principal.scopes.smart_scopes_for(item.resource_type, "c"):
                await self.auditor.record(
                    ctx, "fhir.import", outcome="failure", reason="forbidden", inputs=len(inputs)
                )
                raise AccessDenied(
                    f"the access token does not allow creating {item.resource_type} "
                    f"(needs system/, user/ or patient/{item.resource_type}.c)"
                )
        principal, now = ctx.principal, utcnow()
        row = ImportJobRow(
            id=uuid7_hex(),
            status="in-progress",
            created_at=now,
            updated_at=now,
            subject=principal.sub,
            client_id=principal.client_id,
            roles=" ".join(sorted(principal.roles)),
            scope=principal.raw_scope,
            patient=principal.patient,
            ip=ctx.origin.ip,
            base_url=ctx.base_url,
            inputs=[{"type": i.resource_type, "url": i.url} for i in inputs],
            progress=[FileProgress(i.url, i.resource_type).to_json() for i in inputs],
            errors=[],
        )
        await self.auditor.record(ctx, "fhir.import", resource_id=row.id, inputs=len(inputs))
        async with self.database.unit_of_work() as session:
            session.add(row)
        self._start(row.id)
        return row.id

    async def status(self, ctx: FhirContext, job_id: str) -> tuple[int, dict[str, Any]]:
        """202 and a progress line while the job runs; 200 and its report once it is done.
        Only the caller that kicked it off sees it (404 otherwise)."""
        async with self.database.unit_of_work() as session:
            row = await session.get(ImportJobRow, job_id)
        principal = ctx.principal
        if row is None or (row.subject, row.client_id) != (principal.sub, principal.client_id):
            raise ResourceNotFound("no such import job")
        files = [FileProgress.from_json(p) for p in row.progress]
        await self.auditor.record(
            ctx, "fhir.import_status", resource_id=job_id, stored=sum(f.stored for f in files)
        )
        if row.status == "in-progress":
            done = sum(1 for f in files if f.complete)
            stored = sum(f.stored for f in files)
            return 202, {"progress": f"{done} of {len(files)} files, {stored} resources stored"}
        return 200, self.report(row, files)

    @staticmethod
    def report(row: ImportJobRow, files: list[FileProgress]) -> dict[str, Any]:
        outcome = outcome_of(files)
        if row.errors:
            outcome["issue"] = [
                *row.errors,
                *[i for i in outcome["issue"] if i["severity"] == "error"],
            ]
        return {
            "transactionTime": fhir_instant(row.created_at),
            "request": "$import",
            "status": row.status,
            "output": [
                {
                    "type": f.resource_type,
                    "inputUrl": f.source,
                    "count": f.stored,
                    "rejected": f.rejected,
                    "lines": f.lines,
                }
                for f in files
            ],
            "outcome": outcome,
        }

    # --- running ------------------------------------------------------------------------------

    def _start(self, job_id: str) -> None:
        task = asyncio.create_task(self._run_paced(job_id), name=f"phi-import-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> None:
        """Go on with every job a stopped service left unfinished."""
        async with self.database.unit_of_work() as session:
            ids = (
                await session.scalars(
                    select(ImportJobRow.id).where(ImportJobRow.status == "in-progress")
                )
            ).all()
        for job_id in ids:
            self._start(job_id)

    async def stop(self) -> None:
        """Stop the running jobs (each resumes, from its last committed chunk, on next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait(self) -> None:
        """Wait for the running jobs to end (tests, benchmarks)."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _context(self, row: ImportJobRow) -> FhirContext:
        principal = Principal(
            sub=row.subject,
            client_id=row.client_id,
            roles=frozenset(row.roles.split()),
            scopes=ScopeSet(row.scope),
            raw_scope=row.scope,
            patient=row.patient,
            fhir_user=None,
            audience=("medmesh-phi",),
            jti=None,
            issued_at=row.created_at,
            expires_at=row.created_at + timedelta(days=1),
        )
        policy = AccessPolicy(principal)
        policy.denied_patients = await self.consents.denied_patients(self.database)
        base = row.base_url
        return FhirContext(RequestOrigin(row.ip, None, principal), policy, lambda: base)

    async def _run_paced(self, job_id: str) -> None:
        # One bulk unit for the collector from the first chunk to the last (as import_directory).
        with bulk_collection_pacing():
            await self._run(job_id)

    async def _run(self, job_id: str) -> None:
        async with self.database.unit_of_work() as session:
            row = await session.get(ImportJobRow, job_id)
        if row is None:
            return
        ctx = await self._context(row)
        importer = NdjsonImporter(
            self.resources, self.database, ctx, pool=self.preparation, import_job=job_id
        )
        files = [FileProgress.from_json(p) for p in row.progress]
        errors: list[dict[str, Any]] = list(row.errors)
        async with httpx.AsyncClient(
            transport=self.transport, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False
        ) as http:
            for index, progress in enumerate(files):
                if progress.complete:
                    continue

                async def save(session: AsyncSession, after: FileProgress, i: int = index) -> None:
                    await self._save(session, job_id, i, after)

                try:
                    async with http.stream("GET", progress.source) as response:
                        if response.status_code != 200:
                            raise httpx.HTTPStatusError(
                                "not 200", request=response.request, response=response
                            )
                        lines = _chunks(_lines(response), index, progress.lines, self.chunk_lines)
                        async for _, committed in importer.store_chunks(
                            lines, files, save, job=job_id
                        ):
                            progress = committed
                except httpx.HTTPError as exc:
                    status = (
                        exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
                    )
                    errors.append(
                        {
                            "severity": "error",
                            "code": "exception",
                            "diagnostics": f"input {index + 1} ({progress.resource_type}) could not be "
                            f"read: {f'HTTP {status}' if status else type(exc).__name__}",
                        }
                    )
                    log.warning(
                        "import_input_unreadable", job=job_id, input=index + 1, status=status
                    )
                files[index] = progress = FileProgress.from_json(
                    {**progress.to_json(), "complete": True}
                )
                async with self.database.unit_of_work() as session:
                    await self._save(session, job_id, index, progress, errors=errors)
        final = "failed" if errors else "completed"
        async with self.database.unit_of_work() as session:
            job = await session.get(ImportJobRow, job_id)
            if job is not None:
                job.status, job.updated_at = final, utcnow()
        await self.auditor.record(
            ctx,
            "fhir.import",
            resource_id=job_id,
            outcome="success" if not errors else "failure",
            stored=sum(f.stored for f in files),
            rejected=sum(f.rejected for f in files),
            unreadable=len(errors),
        )

    @staticmethod
    async def _save(
        session: AsyncSession,
        job_id: str,
        index: int,
        progress: FileProgress,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        await session.run_sync(save_progress, job_id, index, progress, errors)
