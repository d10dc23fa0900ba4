"""Import chunks written by the worker that prepared them, on SQLite (decisions 0054, 0055).

With SQLite one writer works at a time, and the service's writes of an import (its SQLite
statements, the audit records, reading the workers' answers) took as much CPU a resource as a
worker's preparation: one core wrote while the other prepared, and neither was ever the only
thing running. Here each worker writes the chunk it prepared, in its own transaction on its own
connection. A chunk commits after the chunks of its resource type before it (:class:`Turns`),
so a file's later line still wins and a job's progress is a prefix of each file's lines;
chunks of different types hold different resources and commit as their workers get to them.
While one worker writes, the others prepare.

A worker writes a chunk only when it can do everything the service would: every valid line is
a create (no resource of the chunk exists, none is twice in it) of a type the caller may create
wholesale (:attr:`WritePlan.creatable`: no per-patient or ``?category=`` limit to check). In one
transaction begun with ``BEGIN IMMEDIATE`` it inserts the rows, the versions and the index rows
(a resource that exists fails its row's insert: the chunk is not all creates), commits the
``fhir.create`` records to the audit file (before the resources are committed, as the service
does), writes the job's progress, and commits. Otherwise it writes nothing and hands the
prepared chunk back: the service stores it its own way, then passes the turn on.

A large transaction whose entries are all creates with server ids goes whole to one worker,
which prepares and writes it in one SQLite transaction with the Bundle's ``fhir.transaction``
record (:meth:`ChunkWriter.write_bundles`), or hands it back (an entry refused, a type the
caller may not create wholesale). Transactions that wait for a worker while every worker is
busy go to the next free one together, which writes them in one SQLite transaction.
Transactions hold new resources only: they wait for no chunk's turn.
"""

from __future__ import annotations

import multiprocessing.context
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medmesh.phi.bulk_import.preparation import Prepared, Rejected
from medmesh.phi.bulk_import.progress import FileProgress, rejection
from medmesh.phi.bulk_import.repository import save_progress
from medmesh.phi.bundles.repository import (
    add_new_resource,
    new_resource_rows,
    new_resource_statements,
)
from medmesh.phi.search.repository import insert_statements
from medmesh.platform.audit import SqliteAppender
from medmesh.platform.audit.keys import LinkKey
from medmesh.platform.db import run_together, sqlite, sqlite_writer_engine, utcnow
from medmesh.platform.db.engine import WRITER_WAIT_SECONDS

#: How often a worker waiting for its chunk's turn looks at the chunks before it.
POLL_SECONDS = 0.0005


class Turn(NamedTuple):
    """A chunk's place in the order of commits: its number, and the chunks that must commit
    before it (the last chunk of its resource type, the last of a file of any type)."""

    number: int
    after: tuple[int, ...]


#: How many chunks' states :class:`Turns` keeps: far more than are ever submitted at once.
TURN_SLOTS = 4096


class Turns:
    """The order in which chunks commit, shared by the service and the workers it forks.

    Chunks of one resource type commit in the order of their lines: a later line of a resource
    wins, and a file's progress is a prefix of its lines. Chunks of different types hold
    different resources and commit in whichever order their workers get to them; a chunk of a
    file of any type (``expected_type`` None) commits after every chunk before it, and every
    chunk after it waits for it.

    The service numbers the chunks it gives the workers (:meth:`issue`); a worker waits for
    the chunks its chunk comes after (:meth:`wait`) and marks its chunk settled once committed
    (:meth:`done`); the service marks settled a chunk it stored itself, and gives up the chunks
    it will not settle (:meth:`abandon`: their workers then write nothing).

    The state lives in shared memory: each chunk's slot holds the number of the last chunk
    settled there (a slot serves every :data:`TURN_SLOTS`-th chunk; a chunk is issued only once
    the chunk that last used its slot is settled, as far fewer are ever under way). A waiting
    worker looks every :data:`POLL_SECONDS` rather than sleeping on a condition: a condition's
    notify waits for every sleeper to wake, and a worker killed in its sleep would hold the
    service there. Every store is a single aligned word, written by one side at a time.
    """

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self._settled: Any = context.RawArray("q", [-1] * TURN_SLOTS)
        self._abandoned: Any = context.RawValue("q", -1)
        self._issued = 0
        self._last_of: dict[str | None, int] = {}

    def issue(self, resource_type: str | None) -> Turn:
        """The turn of the next chunk given to the workers, of ``resource_type`` (None: a
        file of any type), in the service."""
        number = self._issued
        self._issued += 1
        if resource_type is None:
            after = tuple(self._last_of.values())
            self._last_of.clear()
        else:
            after = tuple(
                self._last_of[kind] for kind in (resource_type, None) if kind in self._last_of
            )
        self._last_of[resource_type] = number
        return Turn(number, after)

    @property
    def issued(self) -> int:
        """How many chunks were numbered."""
        return self._issued

    def wait(self, turn: Turn) -> bool:
        """Wait until the chunks ``turn`` comes after are settled: True, or False when its
        chunk was given up."""
        settled, abandoned = self._settled, self._abandoned
        pending = list(turn.after)
        while True:
            if abandoned.value >= turn.number:
                return False
            pending = [one for one in pending if settled[one % TURN_SLOTS] < one]
            if not pending:
                return True
            time.sleep(POLL_SECONDS)

    def done(self, number: int) -> None:
        """Chunk ``number`` is settled (committed, or stored by the service)."""
        slot = number % TURN_SLOTS
        if self._settled[slot] < number:
            self._settled[slot] = number

    def abandon(self) -> None:
        """Give up every chunk issued and not settled: their workers write nothing."""
        self._abandoned.value = self._issued - 1
        self._last_of.clear()


class WritePlan(NamedTuple):
    """What a worker needs to write one file's chunks as the service would."""

    #: The URL of phi's SQLite database and of its audit file.
    database: str
    audit: str
    #: The ``fhir.create`` record the service would write for each resource, but its subject.
    audit_row: dict[str, Any]
    audit_key: LinkKey | None
    #: The types the caller may create whatever a resource holds.
    creatable: frozenset[str]
    #: The file's name in the progress and its rejected lines' issues.
    source: str
    #: The import job whose progress the chunk's transaction writes, and the file's index in it.
    job: str | None
    file_index: int


class Written(NamedTuple):
    """A chunk its worker committed."""

    stored: int
    #: Its rejected lines' OperationOutcome issues, by line.
    issues: list[dict[str, Any]]
    #: The types it created.
    types: frozenset[str]
    #: The last of its audit records (one a resource stored): ``seq`` and ``hash``.
    audit_head: tuple[int, str] | None


class BundlePlan(NamedTuple):
    """What a worker needs to write a transaction's creates as the service would."""

    #: The URL of phi's SQLite database and of its audit file.
    database: str
    audit: str
    #: The ``fhir.create`` record of each resource and the Bundle's ``fhir.transaction``
    #: record, as the service would write them, but their subjects.
    create_row: dict[str, Any]
    transaction_row: dict[str, Any]
    audit_key: LinkKey | None
    #: The types the caller may create whatever a resource holds.
    creatable: frozenset[str]


class BundleWrite(NamedTuple):
    """A transaction's creates to write: its plan, its prepared entries, its time."""

    plan: BundlePlan
    results: list[Prepared | Rejected]
    now: datetime


class WrittenBundle(NamedTuple):
    """A transaction's creates and its ``fhir.transaction`` record, committed by a worker."""

    #: Each create's compartment (its row's ``patient_id``), in the order of the items.
    patient_ids: list[str | None]
    #: The types it created.
    types: frozenset[str]
    #: The last of its audit records: ``seq`` and ``hash``.
    audit_head: tuple[int, str]


class ChunkWriter:
    """A worker's connections to phi's database and its audit file (opened at first use).

    The workers write in ``turn`` (one lock the service made before forking them, also taken
    by its checkpoints' last pass, :meth:`Database.others_committed`): a worker waiting for
    another's write is woken as soon as that ends, instead of trying SQLite's write lock
    every :data:`~medmesh.platform.db.engine.WRITER_POLL_SECONDS` (each try costs CPU, and the
    lock is free meanwhile). Whoever holds the turn still takes SQLite's lock, which the
    service's own writes hold at times; a turn not had within
    :data:`~medmesh.platform.db.engine.WRITER_WAIT_SECONDS` (its holder killed) is done
    without.
    """

    def __init__(self, plan: WritePlan | BundlePlan, turn: sqlite.SharedTurn | None = None) -> None:
        self.turn = turn
        self.engine: Engine = sqlite_writer_engine(plan.database)
        # The audit file's appender without the service's driver: it waits in SQLite's busy
        # handler and checkpoints in its commits (this process has no event loop).
        self.audit = SqliteAppender(
            make_url(plan.audit).set(drivername="sqlite").render_as_string(hide_password=False)
        )

    def write(
        self,
        plan: WritePlan,
        results: list[Prepared | Rejected | None],
        now: datetime,
        last_line: int,
    ) -> Written | None:
        """Store a prepared chunk (its lines up to ``last_line``) as the service would, or None
        (nothing written) when the service must: a line that is not a create of a type in
        ``plan.creatable``."""
        prepared = [one for one in results if isinstance(one, Prepared)]
        keys = {(one.resource_type, one.resource_id) for one in prepared}
        types = frozenset(kind for kind, _ in keys)
        if len(keys) != len(prepared) or not types <= plan.creatable:
            return None
        issues = rejected_issues(plan.source, results)
        head = None
        try:
            with (
                sqlite.in_turn(self.turn, WRITER_WAIT_SECONDS),
                self.engine.begin() as conn,
            ):  # BEGIN IMMEDIATE: the write lock
                if prepared:
                    # A resource of the chunk that exists (deleted or not) fails its row's
                    # insert: the chunk rolls back, before any of its records is written.
                    _insert(conn, [(prepared, now)], "PUT")
                    # Committed before the resources are.
                    rows = _records(plan.audit_row, prepared, utcnow())
                    head = self._audit(rows, plan.audit_key)
                if plan.job is not None:

                    def after(progress: FileProgress) -> FileProgress:
                        return progress.after_chunk(last_line, len(prepared), issues)

                    with Session(bind=conn) as session:
                        save_progress(session, plan.job, plan.file_index, after)
                        session.flush()
        except IntegrityError:
            return None
        return Written(len(prepared), issues, types, head)

    def write_bundles(self, bundles: Sequence[BundleWrite]) -> list[WrittenBundle | None]:
        """Store transactions' prepared creates as the service would, each with its Bundle's
        ``fhir.transaction`` record, all in one SQLite transaction (every one of them or none);
        None for a transaction the service must store (nothing of it written): an entry
        refused, a type not in its plan's ``creatable``. Their ids are the server's own, new:
        nothing can be in their way (a clash would fail the insert).

        Transactions written together share the pages their rows land on (the last page of
        each type's rows, of each code's index rows): each is written to the WAL once for all of
        them, instead of once for each."""
        written: list[WrittenBundle | None] = [None] * len(bundles)
        chosen: list[tuple[int, list[Prepared], dict[str, Any]]] = []
        rows: list[dict[str, Any]] = []
        ts = utcnow()
        for index, (plan, results, _now) in enumerate(bundles):
            prepared = [one for one in results if isinstance(one, Prepared)]
            types = frozenset(one.resource_type for one in prepared)
            if not prepared or len(prepared) != len(results) or not types <= plan.creatable:
                continue
            patients = sorted({one.patient_id for one in prepared if one.patient_id})
            closing = {**plan.transaction_row, "ts": ts, "patient_ids": patients}
            rows += _records(plan.create_row, prepared, ts)
            rows.append(closing)
            chosen.append((index, prepared, closing))
        if not chosen:
            return written
        with sqlite.in_turn(self.turn, WRITER_WAIT_SECONDS), self.engine.begin() as conn:
            self._audit(rows, bundles[chosen[0][0]].plan.audit_key)
            _insert(
                conn,
                [(prepared, bundles[index].now) for index, prepared, _ in chosen],
                "POST",
            )
        for index, prepared, closing in chosen:
            written[index] = WrittenBundle(
                [one.patient_id for one in prepared],
                frozenset(one.resource_type for one in prepared),
                (int(closing["seq"]), str(closing["hash"])),
            )
        return written

    def _audit(self, rows: list[dict[str, Any]], key: LinkKey | None) -> tuple[int, str]:
        """Commit ``rows`` to the audit trail (what the service's ``PhiAuditor.record_many``
        writes); the chain's new head."""
        self.audit.append_now(rows, key)
        return int(rows[-1]["seq"]), str(rows[-1]["hash"])


def _records(
    template: dict[str, Any], prepared: list[Prepared], ts: datetime
) -> list[dict[str, Any]]:
    """A ``template`` record (at ``ts``) for each of ``prepared``."""
    base = {**template, "ts": ts}
    return [
        {
            **base,
            "resource_type": one.resource_type,
            "resource_id": one.resource_id,
            "patient_ids": [one.patient_id] if one.patient_id else [],
        }
        for one in prepared
    ]


def _insert(conn: Connection, groups: list[tuple[list[Prepared], datetime]], method: str) -> None:
    """Insert each group's ``prepared`` as new resources of its time (versions written with
    ``method``), with their index rows, in ``conn``'s transaction."""
    current, versions = new_resource_rows()
    for prepared, now in groups:
        for one in prepared:
            add_new_resource(
                current,
                versions,
                now,
                method,
                one.resource_type,
                one.resource_id,
                one.patient_id,
                one.body,
            )
    run_together(
        conn,
        [
            *new_resource_statements(current, versions),
            *insert_statements(one.rows for prepared, _ in groups for one in prepared),
        ],
    )


def rejected_issues(source: str, results: list[Prepared | Rejected | None]) -> list[dict[str, Any]]:
    """The OperationOutcome issues of a chunk's rejected lines (in file ``source``), by line."""
    rejected = sorted((one for one in results if isinstance(one, Rejected)), key=lambda r: r.number)
    return [rejected_issue(source, one) for one in rejected]


def rejected_issue(source: str, rejected: Rejected) -> dict[str, Any]:
    """The OperationOutcome issue of a rejected line of file ``source``."""
    return rejection(source, rejected.number, rejected.code, rejected.message, rejected.path)
