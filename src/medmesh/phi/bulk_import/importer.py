"""Storing NDJSON lines in chunks: each chunk one transaction, its new resources written together.

A line is a resource with its own id (the Bulk Data layout keeps ids; a line without one gets
a server id). Each line is validated, its references brought to their canonical form and its
write checked against the caller's policy exactly as ``PUT /fhir/{type}/{id}`` would; a line
that fails is rejected (counted, listed with its line number, never its content) and the
others are stored. Resources that do not exist yet are held and written together with the
bundles' create path (:class:`~medmesh.phi.bundles.staging.CreateStager`: one ``fhir.create``
record each, committed as one group before the writes; rows and index rows in multi-row
INSERTs); one that exists is updated as a PUT would (a new version). A chunk commits with the
caller's progress record (``on_commit``) in the same transaction, so what a progress record
says is exactly what is stored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bulk_import.preparation import (
    Line,
    LinePreparer,
    Parsed,
    Prepared,
    Rejected,
    parse_line,
)
from medmesh.phi.bulk_import.progress import FileProgress
from medmesh.phi.bulk_import.repository import ImportRepository
from medmesh.phi.bulk_import.writing import WritePlan, Written, rejected_issue, rejected_issues
from medmesh.phi.bundles.staging import CreateStager
from medmesh.phi.collection_pacing import bulk_collection_pacing
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.types import SUPPORTED_TYPES
from medmesh.phi.resources.service import ResourceService
from medmesh.platform.db import Database, utcnow
from medmesh.platform.errors import MedmeshError

#: Lines a chunk (one transaction) holds.
CHUNK_LINES = 500
#: With workers, the import's first chunk is cut after this many lines: the first write starts
#: once they are prepared, while the rest of the chunk is prepared beside it.
FIRST_CHUNK_LINES = 100

OnCommit = Callable[[AsyncSession, FileProgress], Awaitable[None]]


def chunks(
    lines: Iterable[bytes], *, after: int = 0, size: int = CHUNK_LINES
) -> Iterator[list[Line]]:
    """``lines`` numbered from 1, those up to ``after`` skipped (already settled), ``size`` at a time."""
    chunk: list[Line] = []
    for number, line in enumerate(lines, start=1):
        if number <= after:
            continue
        chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _first_cut(
    first: tuple[int, list[Line]], second: tuple[int, list[Line]]
) -> Iterator[tuple[int, list[Line]]]:
    """An import's first two chunks, the first cut after :data:`FIRST_CHUNK_LINES` lines when
    it holds more than twice as many."""
    index, chunk = first
    if len(chunk) > 2 * FIRST_CHUNK_LINES:
        yield index, chunk[:FIRST_CHUNK_LINES]
        yield index, chunk[FIRST_CHUNK_LINES:]
    else:
        yield first
    yield second


class NdjsonImporter:
    """Stores NDJSON lines for one caller (``ctx``: its policy decides, its name is audited).

    With a :class:`~medmesh.phi.bulk_import.pool.PreparationPool`,
    :meth:`store_chunks` has the next chunks' lines prepared in worker processes while it
    writes the current one.
    """

    def __init__(
        self,
        resources: ResourceService,
        database: Database,
        ctx: FhirContext,
        *,
        pool: PreparationPool | None = None,
        **audit: Any,
    ) -> None:
        self.resources = resources
        self.database = database
        self.ctx = ctx
        self.pool = pool
        self._last_now: datetime | None = None
        #: Details every ``fhir.create`` / ``fhir.update`` record of the import carries.
        self.audit = audit

    async def store_chunks(
        self,
        chunks: AsyncIterable[tuple[int, list[Line]]],
        files: list[FileProgress],
        on_commit: OnCommit | None = None,
        job: str | None = None,
    ) -> AsyncIterator[tuple[int, FileProgress]]:
        """Store ``chunks`` (each of the file ``files[i]``) in order, one transaction each;
        yields the file's index and progress after each commit (``files`` is kept up to date).

        ``on_commit`` writes the progress in each chunk's transaction; when it saves the
        progress of the import job ``job``, the pool's workers may write chunks themselves
        (:mod:`~medmesh.phi.bulk_import.writing`), saving it as ``on_commit`` would."""
        pool = self.pool
        if pool is None:
            async for index, chunk in chunks:
                files[index] = await self.store_chunk(chunk, files[index], on_commit)
                yield index, files[index]
            return
        plans = self._write_plans(pool, files, on_commit, job)
        base_urls = self.ctx.local_bases.urls
        pending: deque[tuple[int, list[Line], datetime | None, Any, int | None]] = deque()
        source = aiter(chunks)
        first: tuple[int, list[Line]] | None = None  # waits for a second to start the workers
        exhausted, started = False, False
        failure: Exception | None = None
        try:
            while True:
                while not exhausted and len(pending) < pool.ahead:
                    try:
                        item = await anext(source)
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    except Exception as exc:
                        # The chunks read before the source failed are stored first, as
                        # without workers.
                        exhausted, failure = True, exc
                        break
                    if not started and first is None:
                        first = item
                        continue
                    for index, chunk in _first_cut(first, item) if first is not None else (item,):
                        now = self._now()
                        expected = files[index].resource_type
                        if plans is None:
                            submitted = pool.submit(chunk, expected, base_urls, now)
                            pending.append((index, chunk, now, submitted, None))
                            continue
                        turn = pool.turns.issue(expected)
                        writing = pool.submit_write(
                            turn, chunk, expected, base_urls, now, plans[index]
                        )
                        pending.append((index, chunk, now, writing, turn.number))
                    first, started = None, True
                if first is not None:  # the only chunk: prepared here
                    pending.append((*first, None, None, None))
                    first = None
                if not pending:
                    if failure is not None:
                        raise failure
                    return
                index, chunk, at, future, number = pending.popleft()
                if number is None:
                    prepared = await pool.result(future)
                    files[index] = await self.store_chunk(
                        chunk, files[index], on_commit, prepared, at
                    )
                else:
                    assert at is not None
                    files[index] = await self._settle(
                        pool, number, future, chunk, files[index], on_commit, at
                    )
                    pool.turns.done(number)
                yield index, files[index]
        finally:
            for *_, future, _ in pending:
                if future is not None:
                    future.cancel()
            if plans is not None:
                # The chunks not settled here are given up: their workers write nothing.
                pool.turns.abandon()
                pool.writing = False

    def _write_plans(
        self,
        pool: PreparationPool,
        files: list[FileProgress],
        on_commit: OnCommit | None,
        job: str | None,
    ) -> list[WritePlan] | None:
        """What the workers need to write this import's chunks, or None when the service
        writes them: the workers may not write to these stores
        (:meth:`~PreparationPool.writes_to`), a progress record only ``on_commit`` knows how to
        write, or another import's chunks being written by the workers."""
        trail = self.resources.auditor.trail
        audit = trail.database
        if (
            (on_commit is not None and job is None)
            or not pool.writes_to(self.database, audit)
            or pool.writing
        ):
            return None
        pool.writing = True
        creatable = frozenset(t for t in SUPPORTED_TYPES if self.ctx.policy.creates_any(t))
        row = trail.base_row(self.resources.auditor.template(self.ctx, "fhir.create", **self.audit))
        return [
            WritePlan(
                self.database.url,
                audit.url,
                row,
                trail.link_key,
                creatable,
                progress.source,
                job,
                index,
            )
            for index, progress in enumerate(files)
        ]

    def _now(self) -> datetime:
        """The time of a chunk's versions: later than the last chunk's (a chunk a dead worker
        may have committed is known by it)."""
        now = utcnow()
        if self._last_now is not None and now <= self._last_now:
            now = self._last_now + timedelta(microseconds=1)
        self._last_now = now
        return now

    async def _settle(
        self,
        pool: PreparationPool,
        number: int,
        future: Any,
        chunk: list[Line],
        progress: FileProgress,
        on_commit: OnCommit | None,
        at: datetime,
    ) -> FileProgress:
        """Chunk ``number`` of the workers, settled: its progress once it is committed, by its
        worker or, when that could not write it, here."""
        outcome = await pool.written(future)
        if isinstance(outcome, Written):
            self.database.others_committed(pool.write_turn)
            if outcome.audit_head is not None:
                await self.resources.auditor.trail.adopt(outcome.stored, outcome.audit_head)
            if self.resources.consents is not None and "Consent" in outcome.types:
                self.resources.consents.changed()
            return progress.after_chunk(chunk[-1][0], outcome.stored, outcome.issues)
        if isinstance(outcome, BrokenProcessPool):
            # A worker died: the chunk is wholly committed or wholly absent. Its versions have
            # a time of their own (``at``); when they are there, its outcome is worked out again.
            replayed = await self._replayed_if_committed(pool, chunk, progress, at)
            if replayed is not None:
                return replayed
            outcome = None
        return await self.store_chunk(chunk, progress, on_commit, outcome, at)

    async def _replayed_if_committed(
        self, pool: PreparationPool, chunk: list[Line], progress: FileProgress, at: datetime
    ) -> FileProgress | None:
        """The progress after ``chunk`` when a worker committed it at ``at`` before it died,
        else None."""
        parsed = [parse_line(line, progress.resource_type) for line in chunk]
        types = {one.resource_type for one in parsed if isinstance(one, Parsed)}
        async with self.database.unit_of_work() as session:
            committed = await ImportRepository(session).written_at(types, at)
        if not committed:
            return None
        prepared = LinePreparer(pool.protection, pool.max_depth).prepare(
            chunk, progress.resource_type, self.ctx.local_bases.urls, at
        )
        stored = sum(1 for one in prepared if isinstance(one, Prepared))
        return progress.after_chunk(
            chunk[-1][0], stored, rejected_issues(progress.source, prepared)
        )

    async def store_chunk(
        self,
        chunk: list[Line],
        progress: FileProgress,
        on_commit: OnCommit | None = None,
        prepared: list[Prepared | Rejected | None] | None = None,
        now: datetime | None = None,
    ) -> FileProgress:
        """Store one chunk in one transaction; returns the file's progress once it is committed.

        ``prepared``: what a :class:`~medmesh.phi.bulk_import.preparation.LinePreparer` made
        of the chunk's lines at ``now`` (taken where it may be, the rest done here)."""
        with bulk_collection_pacing():
            rejected: list[tuple[int, dict[str, Any]]] = []
            source = progress.source
            lines: list[Parsed | Prepared] = []
            results: list[Parsed | Prepared | Rejected | None]
            if prepared is None or len(prepared) != len(chunk):
                results = [parse_line(line, progress.resource_type) for line in chunk]
                now = None
            else:
                results = list(prepared)
            for result in results:
                if isinstance(result, Rejected):
                    rejected.append((result.number, rejected_issue(source, result)))
                elif result is not None:
                    lines.append(result)
            async with self.database.unit_of_work() as session:
                async with self.resources.writes.slot(self.ctx.principal, None, "cu"):
                    stored = await self._store(session, chunk, lines, source, rejected, now)
                issues = [issue for _, issue in sorted(rejected, key=lambda r: r[0])]
                after = progress.after_chunk(chunk[-1][0], stored, issues)
                if on_commit is not None:
                    await on_commit(session, after)
        return after

    async def _store(
        self,
        session: AsyncSession,
        chunk: list[Line],
        lines: list[Parsed | Prepared],
        source: str,
        rejected: list[tuple[int, dict[str, Any]]],
        now: datetime | None,
    ) -> int:
        resources, ctx = self.resources, self.ctx
        present = await ImportRepository(session).present(
            {(p.resource_type, p.resource_id) for p in lines}
        )
        stager = CreateStager(resources, now or utcnow(), method="PUT")
        held: set[tuple[str, str]] = set()
        texts = dict(chunk) if any(isinstance(line, Prepared) for line in lines) else {}
        stored = 0
        for line in lines:
            key = (line.resource_type, line.resource_id)
            if isinstance(line, Prepared):
                if (
                    key not in present
                    and key not in held
                    and ctx.policy.allows("c", line.resource_type, line.policy_patient)
                ):
                    stager.hold_sealed(
                        line.resource_type, line.resource_id, line.patient_id, line.body, line.rows
                    )
                    held.add(key)
                    stored += 1
                    continue
                line = _read_again(texts, line)
            try:
                if key in present or key in held:
                    # An update (a new version), as PUT makes it; a resource held earlier in
                    # this chunk is written first.
                    await stager.flush(session, ctx, **self.audit)
                    await resources.apply_update(
                        session, ctx, line.resource_type, line.resource_id, line.resource, None
                    )
                else:
                    await stager.check(ctx, line.resource, line.resource_type)
                    stager.hold(line.resource, line.resource_id)
                    held.add(key)
            except MedmeshError as exc:
                if exc.status >= 500:
                    raise
                rejected.append(
                    (line.number, rejected_issue(source, Rejected.of(line.number, exc)))
                )
                continue
            stored += 1
        await stager.flush(session, ctx, **self.audit)
        return stored


def _read_again(texts: dict[int, bytes], prepared: Prepared) -> Parsed:
    """A prepared line parsed here, to be taken the importer's own way (with the id it was
    prepared under: a line without one got a server id)."""
    parsed = parse_line((prepared.number, texts[prepared.number]), prepared.resource_type)
    if not isinstance(parsed, Parsed):
        raise RuntimeError(f"line {prepared.number} read differently the second time")
    parsed.resource["id"] = parsed.resource_id = prepared.resource_id
    return parsed
