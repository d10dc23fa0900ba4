"""Append-only, hash-chained audit trail with group commit.

Every audited action becomes one row of ``audit_log``. Row ``seq`` carries
``hash = HMAC-SHA256(key, prev_hash + canonical_json(row without hashes))`` under a key the
database does not hold (its ``key_id`` names it) and the ``prev_hash`` of row ``seq - 1``, so
changing, removing or reordering a record breaks the chain and cannot be re-linked without the
key; ``audit_chain_head`` holds the last ``seq`` and hash. Removing the newest rows and moving
the head is caught by the signed checkpoints the writer appends outside the database
(:mod:`medmesh.platform.audit.keys`). The head row is locked
(``SELECT ... FOR UPDATE`` on PostgreSQL) in every write transaction, which keeps
one chain when several replicas write the same database.

:class:`AuditTrail` makes auditing every read cheap: a single writer task takes
everything queued since its last transaction and commits it as one batch;
:meth:`AuditTrail.record` returns only once its record is durable, and raises
:class:`AuditWriteFailed` (503) when it is not, so the caller refuses to serve
unaudited PHI. The tables and how a batch is chained and committed are in
:mod:`medmesh.platform.audit.chain`; verifying and listing in :mod:`medmesh.platform.audit.reading`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from prometheus_client import Counter, Histogram
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from medmesh.platform.audit.chain import SqliteAppender, append_batch
from medmesh.platform.audit.keys import AuditSealing, LinkKey
from medmesh.platform.db import Base, Database, utcnow
from medmesh.platform.errors import ServiceUnavailable
from medmesh.platform.logging import get_logger

__all__ = [
    "AuditRecord",
    "AuditSealing",
    "AuditTrail",
    "AuditWriteFailed",
    "ChainReport",
    "Origin",
    "Subject",
    "audit_database_for",
    "audit_database_url",
    "ensure_audit_tables",
]

log = get_logger("medmesh.platform.audit")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What a caller audits: who did what to which patients' data, when, from where."""

    action: str
    outcome: str = "success"
    actor: str | None = None
    client_id: str | None = None
    roles: Sequence[str] = ()
    patient_ids: Sequence[str] = ()
    resource_type: str | None = None
    resource_id: str | None = None
    source_ip: str | None = None
    purpose: str | None = None
    request_id: str | None = None
    #: Extra, non-PHI context (keeping PHI out is the caller's duty).
    details: dict[str, Any] = field(default_factory=dict)
    #: When it happened; defaults to the moment :meth:`AuditTrail.record` is called.
    ts: datetime | None = None

    @classmethod
    def for_origin(
        cls,
        origin: Origin,
        action: str,
        *,
        outcome: str = "success",
        actor: str | None = None,
        client_id: str | None = None,
        roles: Sequence[str] | None = None,
        patient_ids: Sequence[str] = (),
        resource_type: str | None = None,
        resource_id: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """The record of ``action`` by the caller of a request: who (the origin's subject,
        client and roles unless ``actor``, ``client_id`` or ``roles`` name someone else, such
        as the user a sign-in is for) and from where (its address and request id)."""
        return cls(
            action=action,
            outcome=outcome,
            actor=actor if actor is not None else origin.subject,
            client_id=client_id if client_id is not None else origin.client_id,
            roles=roles if roles is not None else origin.roles,
            patient_ids=patient_ids,
            resource_type=resource_type,
            resource_id=resource_id,
            source_ip=origin.ip,
            purpose=purpose,
            request_id=origin.request_id,
            details=details if details is not None else {},
        )


class Origin(Protocol):
    """Who called and from where, as a record needs it
    (:class:`medmesh.platform.origin.RequestOrigin`)."""

    @property
    def ip(self) -> str | None: ...

    @property
    def request_id(self) -> str | None: ...

    @property
    def subject(self) -> str | None: ...

    @property
    def client_id(self) -> str | None: ...

    @property
    def roles(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of :func:`verify_chain`."""

    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""
    #: The line of the checkpoint the problem is about (None: a record, or no problem).
    checkpoint_line: int | None = None
    #: Checkpoints checked, and the newest record they cover.
    checkpoints: int = 0
    anchored_seq: int = 0


class AuditWriteFailed(ServiceUnavailable):
    """The audit record could not be committed; the audited response must not be served."""

    code = "audit_unavailable"


def _normalise_json(value: Any) -> Any:
    # Stored JSON must read back exactly as hashed: one round trip fixes key types etc.
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def _row(rec: AuditRecord, service: str) -> dict[str, Any]:
    ts = rec.ts or utcnow()
    if ts.tzinfo is None:
        raise ValueError("AuditRecord.ts must be timezone-aware")
    return {
        "ts": ts.astimezone(UTC),
        "service": service,
        "action": rec.action,
        "outcome": rec.outcome,
        "actor": rec.actor,
        "client_id": rec.client_id,
        "roles": [str(r) for r in rec.roles],
        "patient_ids": [str(p) for p in rec.patient_ids],
        "resource_type": rec.resource_type,
        "resource_id": rec.resource_id,
        "source_ip": rec.source_ip,
        "purpose": rec.purpose,
        "request_id": rec.request_id,
        "details": _normalise_json(rec.details),
    }


#: What differs between the records of :meth:`AuditTrail.record_each`: resource type, resource
#: id and patient ids.
Subject = tuple[str | None, str | None, Sequence[str]]

#: A queued row, the future of its call, and whether it is the call's last row (the future is
#: resolved when that one is committed; any failure of the call's rows fails it).
_Pending = tuple[dict[str, Any], "asyncio.Future[None]", bool]


class AuditTrail:
    """Durable, group-committed audit writes for one service."""

    def __init__(
        self,
        database: Database,
        service: str,
        *,
        flush_interval_ms: float = 2.0,
        max_batch: int = 500,
        records_counter: Counter | None = None,
        failures_counter: Counter | None = None,
        batch_histogram: Histogram | None = None,
        sealing: AuditSealing | None = None,
    ) -> None:
        """Metrics are optional: ``records_counter`` counts records written,
        ``failures_counter`` (``medmesh_audit_write_failures_total``) counts batches
        that could not be written, ``batch_histogram`` observes records per commit.

        ``sealing`` (:func:`~medmesh.platform.audit.keys.audit_sealing`) gives the key that
        links records and the log the writer appends checkpoints to; without it records get
        the plain SHA-256 links of the first trails (tests of the chain's mechanics only).
        """
        self.database = database
        self.service = service
        self.flush_interval = flush_interval_ms / 1000
        self.max_batch = max_batch
        self._records = records_counter
        self._failures = failures_counter
        self._batch_sizes = batch_histogram
        self._sqlite = SqliteAppender(database.url) if database.is_sqlite else None
        self.keys = sealing.keys if sealing is not None else None
        self._link_key = self.keys.active if self.keys is not None else None
        self._checkpoints = sealing.checkpoints if sealing is not None else None
        #: The newest committed record (seq, hash), the newest checkpointed seq, and since
        #: when (monotonic) a committed record has waited for a checkpoint.
        self._head: tuple[int, str] | None = None
        self._anchored_seq = 0
        self._unanchored_since: float | None = None
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name=f"audit-writer-{self.service}")

    async def stop(self) -> None:
        """Write everything queued, then stop the writer."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._checkpoint()
        if self._sqlite is not None:
            await self._sqlite.close()

    @property
    def link_key(self) -> LinkKey | None:
        """The key that links the records this trail writes (None: plain SHA-256 links)."""
        return self._link_key

    def base_row(self, rec: AuditRecord) -> dict[str, Any]:
        """The row :meth:`record_each` shares between its records, for a process that appends
        them itself (:meth:`SqliteAppender.append_now`, then :meth:`adopt`)."""
        return _row(rec, self.service)

    async def adopt(self, records: int, head: tuple[int, str]) -> None:
        """Count ``records`` that another process (phi's import writers) committed to this
        trail's file, up to ``head`` (the last one's ``seq`` and ``hash``), as this trail's: in
        its metrics, and covered by its next signed checkpoint."""
        if self._records is not None:
            self._records.inc(records)
        if self._batch_sizes is not None:
            self._batch_sizes.observe(records)
        await self._after_commit_at(head)

    async def record(self, rec: AuditRecord) -> None:
        """Queue ``rec`` and return once it is committed; raise :class:`AuditWriteFailed` if not."""
        await self._queue_and_wait([_row(rec, self.service)])

    async def record_each(self, rec: AuditRecord, subjects: Sequence[Subject]) -> None:
        """Queue one record for each ``(resource_type, resource_id, patient_ids)`` of
        ``subjects``, in their order: ``rec`` with that subject (one moment, ``rec.ts`` or now,
        for all), what :meth:`record_many` writes for such records; return once every one is
        committed, raise :class:`AuditWriteFailed` if any is not.

        The row's other fields are built once and shared by the records (a bulk write's audit
        of each of its resources, docs/decisions/0050-phi-bulk-loads-on-the-service-thread.md).
        """
        base = _row(rec, self.service)
        await self._queue_and_wait(
            [
                {
                    **base,
                    "resource_type": resource_type,
                    "resource_id": resource_id,
                    "patient_ids": [str(p) for p in patient_ids],
                }
                for resource_type, resource_id, patient_ids in subjects
            ]
        )

    async def record_many(self, recs: Sequence[AuditRecord]) -> None:
        """Queue ``recs`` in their order (each its own row of the chain, as :meth:`record`
        makes it) and return once every one is committed; raise :class:`AuditWriteFailed` if
        any is not."""
        service = self.service
        await self._queue_and_wait([_row(rec, service) for rec in recs])

    async def _queue_and_wait(self, rows: list[dict[str, Any]]) -> None:
        """Queue ``rows`` in their order and return once every one is committed; raise
        :class:`AuditWriteFailed` if any is not (none: return at once)."""
        if not rows:
            return
        if self._task is None or self._closing:
            self._count_failure()
            raise AuditWriteFailed("the audit trail is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        last = len(rows) - 1
        self._pending.extend((row, future, i == last) for i, row in enumerate(rows))
        self._wakeup.set()
        await future

    def _count_failure(self) -> None:
        if self._failures is not None:
            self._failures.inc()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._idle()
                self._wakeup.clear()
                if self.flush_interval > 0 and not self._closing:
                    # The group-commit window: let concurrent callers join this batch.
                    await asyncio.sleep(self.flush_interval)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if batch:
                await self._write_batch(batch)

    async def _idle(self) -> None:
        """Wait for records; write the checkpoint that falls due meanwhile."""
        if self._checkpoints is None or self._unanchored_since is None:
            await self._wakeup.wait()
            return
        due = self._unanchored_since + self._checkpoints.every_seconds - time.monotonic()
        if due <= 0:
            await self._checkpoint()
            return
        # A timer rather than wait_for: no task per idle wait on the writer's hot loop.
        timer = asyncio.get_running_loop().call_later(due, self._wakeup.set)
        try:
            await self._wakeup.wait()
        finally:
            timer.cancel()

    async def _checkpoint(self) -> None:
        """Append a signed checkpoint of the newest committed record, if one is not covered."""
        if self._checkpoints is None or self._head is None or self._unanchored_since is None:
            return
        seq, head = self._head
        try:
            await self._checkpoints.write(self.service, seq, head)
        except OSError as exc:
            # The records are committed; the next checkpoint will cover them.
            log.error("audit_checkpoint_failed", seq=seq, error=type(exc).__name__)
            self._count_failure()
            return
        self._anchored_seq, self._unanchored_since = seq, None

    async def _after_commit(self, rows: list[dict[str, Any]]) -> None:
        await self._after_commit_at((int(rows[-1]["seq"]), str(rows[-1]["hash"])))

    async def _after_commit_at(self, head: tuple[int, str]) -> None:
        if self._checkpoints is None or (self._head is not None and head[0] <= self._head[0]):
            return
        self._head = head
        now = time.monotonic()
        if self._unanchored_since is None:
            self._unanchored_since = now
        if (
            self._head[0] - self._anchored_seq >= self._checkpoints.every_records
            or now - self._unanchored_since >= self._checkpoints.every_seconds
        ):
            await self._checkpoint()

    async def _write_batch(self, batch: list[_Pending]) -> None:
        # Not under ``database.write_lock``: callers may hold it while they await
        # ``record()``. SQLite's busy timeout orders this writer with the others.
        try:
            await self._commit([row for row, _, _ in batch])
        except Exception as exc:
            log.error("audit_write_failed", records=len(batch), error=type(exc).__name__)
            self._count_failure()
            for _, future, _ in batch:
                if not future.done():
                    failure = AuditWriteFailed("the audit record could not be written")
                    failure.__cause__ = exc
                    future.set_exception(failure)
            return
        if self._records is not None:
            self._records.inc(len(batch))
        if self._batch_sizes is not None:
            self._batch_sizes.observe(len(batch))
        for _, future, last in batch:
            if last and not future.done():
                future.set_result(None)
        await self._after_commit([row for row, _, _ in batch])

    async def _commit(self, rows: list[dict[str, Any]]) -> None:
        if self._sqlite is not None:
            await self._sqlite.append(rows, self._link_key)
            return
        async with self.database.engine.begin() as conn:
            await conn.run_sync(append_batch, rows, self._link_key)


def audit_database_url(url: str) -> str:
    """Where a service's audit trail lives.

    PostgreSQL: the service's own database (row locks keep the audit writer and
    request transactions apart). SQLite: a sibling file ``<name>-audit.db``,
    because SQLite has one writer per file and a request that holds the write
    lock while it waits for its audit record would otherwise wait on itself.
    """
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return url
    path = Path(parsed.database)
    return parsed.set(
        database=str(path.with_name(path.stem + "-audit" + (path.suffix or ".db")))
    ).render_as_string(hide_password=False)


def audit_database_for(database: Database) -> Database:
    """A :class:`Database` of its own for ``database``'s audit trail (a SQLite sibling file, or
    the same PostgreSQL database through a separate small pool).

    Never the service's own pool: requests hold their pooled connection while they wait for
    their audit record, and a writer queuing for that same pool would wait for them forever.
    """
    return Database(audit_database_url(database.url), pool_size=2)


async def ensure_audit_tables(database: Database) -> None:
    """Create the audit tables in a separate SQLite audit file, or add the columns a file
    created by an older release lacks (``key_id``); idempotent."""
    tables = [Base.metadata.tables[name] for name in ("audit_log", "audit_chain_head")]
    async with database.engine.begin() as conn:
        await conn.run_sync(
            lambda sync: Base.metadata.create_all(sync, tables=tables, checkfirst=True)
        )
        columns = await conn.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("audit_log")}
        )
        if "key_id" not in columns:
            await conn.execute(text("ALTER TABLE audit_log ADD COLUMN key_id VARCHAR(64)"))
