"""The preparation workers: processes that prepare import chunks and transactions' creates
and, on SQLite, write them (what each runs: :mod:`medmesh.phi.bulk_import.worker`).

A :class:`PreparationPool` runs a :class:`~medmesh.phi.bulk_import.preparation.LinePreparer`
in worker processes: the next chunks of an NDJSON import while the importer writes the current
one, and the creates of large transactions, several at once when they wait for a worker.
Decision 0048.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from prometheus_client import Counter

from medmesh.phi.bulk_import.preparation import Item, Line, Prepared, Rejected
from medmesh.phi.bulk_import.worker import (
    BundleWork,
    prepare_and_write_bundles,
    prepare_and_write_chunk,
    prepare_chunk,
    prepare_creates,
    start_worker,
)
from medmesh.phi.bulk_import.writing import (
    BundlePlan,
    Turn,
    Turns,
    WritePlan,
    Written,
    WrittenBundle,
)
from medmesh.phi.protection import PhiProtection
from medmesh.platform.db import Database, sqlite
from medmesh.platform.logging import get_logger
from medmesh.platform.metrics import ServiceMetrics

#: What a worker's work gives back.
T = TypeVar("T")
_log = get_logger("medmesh.phi.import")


#: The most creates of transactions written together (more wait for the next free worker).
GROUPED_CREATES = 2000


class PoolStopped(BrokenProcessPool):
    """The pool stopped while this work waited for a worker or was under way, closed or after
    a worker died (counted where it died): nothing of it is written, and its failure counts no
    lost worker."""


@dataclass(frozen=True)
class PreparationMetrics:
    """What the preparation workers did (on the app's registry)."""

    prepared: Counter
    lost: Counter
    written: Counter
    written_transactions: Counter

    @classmethod
    def register(cls, metrics: ServiceMetrics) -> PreparationMetrics:
        return cls(
            prepared=metrics.counter(
                "medmesh_phi_resources_prepared_by_workers_total",
                "Resources the preparation workers validated, sealed and indexed, by kind "
                "(import: NDJSON lines; transaction: a large transaction's creates).",
                ("kind",),
            ),
            lost=metrics.counter(
                "medmesh_phi_preparation_workers_lost_total",
                "Times a preparation worker died: the pool stops and the service prepares "
                "the rest itself.",
            ),
            written=metrics.counter(
                "medmesh_phi_import_resources_written_by_workers_total",
                "NDJSON import lines a preparation worker stored itself, in its turn, on SQLite "
                "(the others are stored by the service).",
            ),
            written_transactions=metrics.counter(
                "medmesh_phi_transaction_resources_written_by_workers_total",
                "Creates of large transactions a preparation worker stored itself with the "
                "Bundle's record, on SQLite (the others are stored by the service).",
            ),
        )


class PreparationPool:
    """Worker processes that prepare import chunks (:meth:`submit`, :meth:`result`) and
    transactions' creates (:meth:`prepare_resources`), and on SQLite write them too
    (:meth:`submit_write`, :meth:`submit_bundle_write`).

    Once a worker dies the pool is broken for good: it answers None and the service prepares
    the rest itself.
    """

    def __init__(
        self,
        protection: PhiProtection,
        max_depth: int,
        workers: int,
        metrics: PreparationMetrics | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a preparation pool needs at least one worker")
        self.protection = protection
        self.max_depth = max_depth
        self.metrics = metrics
        self.workers = workers
        context = multiprocessing.get_context("fork")
        #: The order in which the workers commit the chunks they write.
        self.turns = Turns(context)
        #: The workers' turn to write (:class:`ChunkWriter`), which the service's checkpoints
        #: after their commits take too (:meth:`Database.others_committed`).
        self.write_turn: sqlite.SharedTurn = context.Lock()
        #: Whether an import's chunks are being written by the workers (one import at a time).
        self.writing = False
        #: Transactions waiting for a worker (:meth:`submit_bundle_write`), and how many
        #: groups of them the workers have.
        self._waiting_bundles: list[tuple[BundleWork, asyncio.Future[Any]]] = []
        self._bundles_under_way = 0
        self._executor: ProcessPoolExecutor | None = None
        self._lost = False

    def _started(self) -> ProcessPoolExecutor | None:
        """The workers, started at the first chunk (None once they were lost)."""
        if self._executor is None and not self._lost:
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=start_worker,
                initargs=(self.protection, self.max_depth, self.turns, self.write_turn),
            )
        return self._executor

    @property
    def ahead(self) -> int:
        """How many chunks to keep submitted: one for each worker and three waiting.

        A line costs the service and a worker different amounts by type (an ExplanationOfBenefit
        is mostly a worker's work, an Observation mostly the service's writes): prepared chunks
        waiting let the faster side run ahead through such a stretch instead of waiting for the
        other (decision 0050). A chunk is at most ``CHUNK_LINES`` lines.
        """
        return self.workers + 3

    def submit(
        self,
        chunk: list[Line],
        expected_type: str | None,
        base_urls: tuple[str, ...],
        now: datetime,
    ) -> asyncio.Future[list[Prepared | Rejected | None]] | None:
        """The chunk's preparation under way, or None when the pool cannot take it."""
        return self._submit(prepare_chunk, chunk, expected_type, base_urls, now)

    def _submit(self, work: Callable[..., T], *args: Any) -> asyncio.Future[T] | None:
        """``work(*args)`` under way in a worker, or None when the pool cannot take it."""
        executor = self._started()
        if executor is None:
            return None
        try:
            future: Future[T] = executor.submit(work, *args)
        except (BrokenProcessPool, RuntimeError):
            self._broken()
            return None
        return asyncio.wrap_future(future)

    async def _outcome(self, future: asyncio.Future[T] | None) -> T | BrokenProcessPool:
        """What ``future``'s work came to, or the pool's failure (a worker died, or the pool
        could not take the work)."""
        if future is None:
            return BrokenProcessPool("the pool could not take the work")
        try:
            return await future
        except PoolStopped as exc:
            return exc
        except BrokenProcessPool as exc:
            self._broken()
            return exc

    @property
    def lost(self) -> bool:
        """Whether a worker died (the pool prepares nothing more)."""
        return self._lost

    def submit_write(
        self,
        turn: Turn,
        chunk: list[Line],
        expected_type: str | None,
        base_urls: tuple[str, ...],
        now: datetime,
        plan: WritePlan,
    ) -> asyncio.Future[Written | list[Prepared | Rejected | None] | None] | None:
        """A chunk (its ``turn`` of :attr:`turns`) prepared and written by a worker in its turn
        (:mod:`~medmesh.phi.bulk_import.writing`), or None when the pool cannot take it."""
        return self._submit(
            prepare_and_write_chunk, turn, chunk, expected_type, base_urls, now, plan
        )

    async def written(
        self, future: asyncio.Future[Written | list[Prepared | Rejected | None] | None] | None
    ) -> Written | list[Prepared | Rejected | None] | BrokenProcessPool | None:
        """What :meth:`submit_write`'s chunk came to: written, handed back, given up (None), or
        the pool's failure (a worker died: the chunk may or may not be committed)."""
        outcome = await self._outcome(future)
        if isinstance(outcome, BrokenProcessPool):
            return outcome
        if isinstance(outcome, list):
            self._count("import", outcome)
        elif outcome is not None and self.metrics is not None:
            self.metrics.prepared.labels(kind="import").inc(outcome.stored)
            self.metrics.written.inc(outcome.stored)
        return outcome

    def writes_to(self, database: Database, audit: Database) -> bool:
        """Whether the workers may write to ``database`` and its audit trail's ``audit``
        themselves: SQLite files, the trail's a file of its own, and two workers or more (one
        would prepare and write in turn, one core idle) that are all alive."""
        return (
            database.is_sqlite
            and audit.is_sqlite
            and audit.url != database.url
            and self.workers >= 2
            and not self._lost
        )

    def submit_bundle_write(
        self, items: list[Item], base_urls: tuple[str, ...], now: datetime, plan: BundlePlan
    ) -> asyncio.Future[WrittenBundle | list[Prepared | Rejected]] | None:
        """A transaction's creates prepared and written with its record by a worker
        (:meth:`ChunkWriter.write_bundles`), or None when the pool cannot take them.

        While as many transactions are under way in the workers as there are workers, the
        next ones wait here; the first worker done takes every one waiting (up to
        :data:`GROUPED_CREATES` creates, written to the same files) and writes them together.
        """
        if self._started() is None:
            return None
        future: asyncio.Future[WrittenBundle | list[Prepared | Rejected]]
        future = asyncio.get_running_loop().create_future()
        self._waiting_bundles.append((BundleWork(items, base_urls, now, plan), future))
        self._dispatch_bundles()
        return future

    def _dispatch_bundles(self) -> None:
        """Give the transactions waiting to the workers, a group at a time, while one is free."""
        while self._waiting_bundles and self._bundles_under_way < self.workers:
            group = self._next_bundles()
            if not group:
                continue
            task = self._submit(prepare_and_write_bundles, [work for work, _ in group])
            if task is None:
                for _, future in group:
                    if not future.done():
                        future.set_exception(BrokenProcessPool("the pool could not take them"))
                continue
            self._bundles_under_way += 1
            task.add_done_callback(partial(self._bundles_done, group))

    def _next_bundles(self) -> list[tuple[BundleWork, asyncio.Future[Any]]]:
        """The first transaction waiting and those after it that go to the same files, up to
        :data:`GROUPED_CREATES` creates (whose callers still wait)."""
        group: list[tuple[BundleWork, asyncio.Future[Any]]] = []
        left: list[tuple[BundleWork, asyncio.Future[Any]]] = []
        creates = 0
        for work, future in self._waiting_bundles:
            if future.done():  # its caller went away: nothing of it is written
                continue
            plan = work.plan
            if group and (
                (plan.database, plan.audit, plan.audit_key)
                != (group[0][0].plan.database, group[0][0].plan.audit, group[0][0].plan.audit_key)
                or creates + len(work.items) > GROUPED_CREATES
            ):
                left.append((work, future))
                continue
            group.append((work, future))
            creates += len(work.items)
        self._waiting_bundles = left
        return group

    def _bundles_done(
        self,
        group: list[tuple[BundleWork, asyncio.Future[Any]]],
        task: asyncio.Future[list[WrittenBundle | list[Prepared | Rejected]]],
    ) -> None:
        self._bundles_under_way -= 1
        failure: BaseException | None = (
            PoolStopped("the pool stopped") if task.cancelled() else task.exception()
        )
        for index, (_, future) in enumerate(group):
            if future.done():
                continue
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(task.result()[index])
        self._dispatch_bundles()

    def _fail_waiting_bundles(self) -> None:
        """Leave the transactions waiting for a worker to the service (nothing of them is
        written): their callers see the pool's failure."""
        waiting, self._waiting_bundles = self._waiting_bundles, []
        for _, future in waiting:
            if not future.done():
                future.set_exception(PoolStopped("the pool stopped"))

    async def bundle_written(
        self, future: asyncio.Future[WrittenBundle | list[Prepared | Rejected]] | None
    ) -> WrittenBundle | list[Prepared | Rejected] | BrokenProcessPool:
        """What :meth:`submit_bundle_write`'s creates came to: written, handed back prepared,
        or the pool's failure (a worker died: the creates may or may not be committed)."""
        outcome = await self._outcome(future)
        if isinstance(outcome, BrokenProcessPool):
            return outcome
        if isinstance(outcome, list):
            self._count("transaction", outcome)
        elif self.metrics is not None:
            self.metrics.prepared.labels(kind="transaction").inc(len(outcome.patient_ids))
            self.metrics.written_transactions.inc(len(outcome.patient_ids))
        return outcome

    async def prepare_resources(
        self, items: list[Item], base_urls: tuple[str, ...], now: datetime
    ) -> list[Prepared | Rejected] | None:
        """``items`` prepared by every worker at once (a share each), in order; None when the
        pool cannot prepare them."""
        executor = self._started()
        if executor is None:
            return None
        share = -(-len(items) // self.workers)
        try:
            futures = [
                asyncio.wrap_future(
                    executor.submit(prepare_creates, items[at : at + share], base_urls, now)
                )
                for at in range(0, len(items), share)
            ]
        except (BrokenProcessPool, RuntimeError):
            self._broken()
            return None
        try:
            parts = await asyncio.gather(*futures)
        except BrokenProcessPool:
            self._broken()
            return None
        prepared = [one for part in parts for one in part]
        self._count("transaction", prepared)
        return prepared

    async def result(
        self, future: asyncio.Future[list[Prepared | Rejected | None]] | None
    ) -> list[Prepared | Rejected | None] | None:
        """What a submitted chunk's preparation gave, or None when it could not finish."""
        prepared = await self._outcome(future)
        if isinstance(prepared, BrokenProcessPool):
            return None
        self._count("import", prepared)
        return prepared

    def _count(self, kind: str, prepared: Sequence[Prepared | Rejected | None]) -> None:
        if self.metrics is not None:
            done = sum(1 for one in prepared if isinstance(one, Prepared))
            self.metrics.prepared.labels(kind=kind).inc(done)

    def _broken(self) -> None:
        if self.metrics is not None and not self._lost:
            self.metrics.lost.inc()
        self._lost = True
        self._fail_waiting_bundles()
        if self._executor is not None:
            _log.warning("import_workers_lost", workers=self.workers)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        """Stop the workers (what they were preparing is dropped; the transactions waiting for
        them are left to the service)."""
        self._fail_waiting_bundles()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
