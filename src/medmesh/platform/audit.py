"""Append-only, hash-chained audit trail with group commit.

Every audited action becomes one row of ``audit_log``. Row ``seq`` carries
``hash = sha256(prev_hash + canonical_json(row without hashes))`` and the
``prev_hash`` of row ``seq - 1``, so changing, removing or reordering a record
breaks the chain; ``audit_chain_head`` holds the last ``seq`` and hash so that
removing the newest rows is detected too. The head row is locked
(``SELECT ... FOR UPDATE`` on PostgreSQL) in every write transaction, which keeps
one chain when several replicas write the same database.

:class:`AuditTrail` makes auditing every read cheap: a single writer task takes
everything queued since its last transaction and commits it as one batch;
:meth:`AuditTrail.record` returns only once its record is durable, and raises
:class:`AuditWriteFailed` (503) when it is not, so the caller refuses to serve
unaudited PHI.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Counter, Histogram
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Mapped, mapped_column

from medmesh.platform.db import Base, Database, UTCDateTime, utcnow
from medmesh.platform.errors import ServiceUnavailable
from medmesh.platform.logging import get_logger
from medmesh.platform.sqlite import (
    BUSY_MS,
    begin_immediate,
    checkpoint_soon,
    checkpoints_settled,
    file_key,
)

__all__ = [
    "GENESIS_HASH",
    "AuditChainHead",
    "AuditEntry",
    "AuditRecord",
    "AuditTrail",
    "AuditWriteFailed",
    "ChainReport",
    "audit_database_for",
    "audit_database_url",
    "ensure_audit_tables",
    "record_hash",
]

log = get_logger("medmesh.platform.audit")

#: The ``prev_hash`` of the first record.
GENESIS_HASH = "0" * 64

_SeqType = BigInteger().with_variant(Integer(), "sqlite")
_JsonList = JSON().with_variant(postgresql.JSONB(), "postgresql")


class AuditEntry(Base):
    """One stored audit record (a row of ``audit_log``)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(_SeqType, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    service: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(128), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(255), index=True)
    client_id: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(_JsonList)
    patient_ids: Mapped[list[str]] = mapped_column(_JsonList)
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(255))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(1024))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        # "who accessed this patient" is the question an auditor asks most.
        Index("ix_audit_log_patient_ids", "patient_ids", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )


class AuditChainHead(Base):
    """The last ``seq`` and hash of the chain (one row, ``id = 1``)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(_SeqType)
    last_hash: Mapped[str] = mapped_column(String(64))


_HASHED_FIELDS = (
    *("seq", "ts", "service", "action", "outcome", "actor", "client_id", "roles"),
    *("patient_ids", "resource_type", "resource_id", "source_ip", "purpose", "request_id"),
    "details",
)


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


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of :func:`verify_chain`."""

    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""


class AuditWriteFailed(ServiceUnavailable):
    """The audit record could not be committed; the audited response must not be served."""

    code = "audit_unavailable"


def _ts_text(ts: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (what strftime would give, at two thirds the cost)."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def record_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The hex SHA-256 of ``prev_hash`` and the canonical JSON of ``row``'s hashed fields."""
    body = {name: row[name] for name in _HASHED_FIELDS}
    body["ts"] = _ts_text(body["ts"])
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


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


_Pending = tuple[dict[str, Any], "asyncio.Future[None]"]


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
    ) -> None:
        """Metrics are optional: ``records_counter`` counts records written,
        ``failures_counter`` (``medmesh_audit_write_failures_total``) counts batches
        that could not be written, ``batch_histogram`` observes records per commit.
        """
        self.database = database
        self.service = service
        self.flush_interval = flush_interval_ms / 1000
        self.max_batch = max_batch
        self._records = records_counter
        self._failures = failures_counter
        self._batch_sizes = batch_histogram
        self._sqlite = _SqliteAppender(database.url) if database.is_sqlite else None
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
        if self._sqlite is not None:
            await self._sqlite.close()

    async def record(self, rec: AuditRecord) -> None:
        """Queue ``rec`` and return once it is committed; raise :class:`AuditWriteFailed` if not."""
        if self._task is None or self._closing:
            self._count_failure()
            raise AuditWriteFailed("the audit trail is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((_row(rec, self.service), future))
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
                await self._wakeup.wait()
                self._wakeup.clear()
                if self.flush_interval > 0 and not self._closing:
                    # The group-commit window: let concurrent callers join this batch.
                    await asyncio.sleep(self.flush_interval)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if batch:
                await self._write_batch(batch)

    async def _write_batch(self, batch: list[_Pending]) -> None:
        # Not under ``database.write_lock``: callers may hold it while they await
        # ``record()``. SQLite's busy timeout orders this writer with the others.
        try:
            await self._commit([row for row, _ in batch])
        except Exception as exc:
            log.error("audit_write_failed", records=len(batch), error=type(exc).__name__)
            self._count_failure()
            for _, future in batch:
                if not future.done():
                    failure = AuditWriteFailed("the audit record could not be written")
                    failure.__cause__ = exc
                    future.set_exception(failure)
            return
        if self._records is not None:
            self._records.inc(len(batch))
        if self._batch_sizes is not None:
            self._batch_sizes.observe(len(batch))
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _commit(self, rows: list[dict[str, Any]]) -> None:
        if self._sqlite is not None:
            await self._sqlite.append(rows)
            return
        async with self.database.engine.begin() as conn:
            await conn.run_sync(_append, rows)


class _SqliteAppender:
    """Appends a batch to a SQLite audit file with a handful of C calls.

    With the embedded driver (``sqlite+medmesh``, statements on the event loop) the batch is
    written on the loop too: a WAL commit under ``synchronous=NORMAL`` writes but does not sync,
    so it is cheaper than the hop to a worker thread and back, which on a service pinned to one
    core cost a fifth of a FHIR read. The WAL is checkpointed off the loop, as the driver's own
    files are (:func:`~medmesh.platform.sqlite.checkpoint_soon`): SQLite's automatic checkpoint
    copied 1,000 pages and synced twice inside a commit on the loop, about once a second under
    read load.
    The write lock held by another process is waited for with asyncio sleeps, as the driver does.
    Other drivers (``sqlite+aiosqlite``) append on a worker thread, one hop per batch.

    The values go through the same SQLAlchemy bind processors as the ORM would use,
    so rows read back by :func:`verify_chain` hash exactly as they were written.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.path = parsed.database or ""
        #: The name the driver knows the file by (its checkpoints), None for an in-memory one.
        self.key = file_key(self.path) if self.path not in ("", ":memory:") else None
        self.on_loop = parsed.get_driver_name() == "medmesh"
        self.timeout = 10.0
        self._conn: sqlite3.Connection | None = None
        # JSON columns written by orjson (the stdlib encoder was a visible share of an audited
        # request); what reads them back parses either, and hashes the values, not the text.
        dialect = sqlite.dialect(json_serializer=_json_text)
        table = AuditEntry.__table__
        self._columns = [c.name for c in table.columns]
        self._processors = [c.type.bind_processor(dialect) for c in table.columns]
        names = ", ".join(self._columns)
        marks = ", ".join("?" for _ in self._columns)
        self._insert = f"INSERT INTO audit_log ({names}) VALUES ({marks})"  # noqa: S608 - fixed names

    def _connect(self, busy_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
        )
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        if self.on_loop and self.key is not None:
            # Checkpoints off the loop, as the driver's (platform.sqlite.checkpoint_soon): SQLite's
            # automatic one copied 1,000 pages and synced twice inside a commit on the loop.
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.on_loop:
                # The loop never sits in SQLite's busy handler for long.
                self._conn = self._connect(BUSY_MS)
            else:
                self._conn = self._connect(int(self.timeout * 1000))
        return self._conn

    async def append(self, rows: list[dict[str, Any]]) -> None:
        """Chain and commit ``rows``."""
        if not self.on_loop:
            await asyncio.to_thread(self._append_blocking, rows)
            return
        conn = self._connection()
        # Another process (or a second trail on this file) may write: wait for it off the loop.
        await begin_immediate(conn, self.timeout)
        self._write(conn, rows)
        if self.key is not None:
            checkpoint_soon(self.key)

    def _append_blocking(self, rows: list[dict[str, Any]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        self._write(conn, rows)

    def _write(self, conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        """The batch's statements and commit, in the transaction ``conn`` has begun."""
        try:
            found = conn.execute(
                "SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1"
            ).fetchone()
            if found is None:
                conn.execute(
                    "INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, ?)",
                    (GENESIS_HASH,),
                )
                found = (0, GENESIS_HASH)
            last_seq, last_hash = int(found[0]), str(found[1])
            values = []
            for row in rows:
                last_seq += 1
                row["seq"] = last_seq
                row["prev_hash"] = last_hash
                row["hash"] = last_hash = record_hash(last_hash, row)
                values.append(
                    [
                        proc(row[name]) if proc is not None else row[name]
                        for name, proc in zip(self._columns, self._processors, strict=True)
                    ]
                )
            conn.executemany(self._insert, values)
            conn.execute(
                "UPDATE audit_chain_head SET last_seq = ?, last_hash = ? WHERE id = 1",
                (last_seq, last_hash),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        """Close the connection once no checkpoint runs (the last close copies the WAL home)."""
        if self.on_loop and self.key is not None:
            await checkpoints_settled(self.key)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _append(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Chain ``rows`` after the locked head and insert them, in ``conn``'s transaction."""
    last_seq, last_hash = _lock_head(conn)
    for row in rows:
        last_seq += 1
        row["seq"] = last_seq
        row["prev_hash"] = last_hash
        row["hash"] = last_hash = record_hash(last_hash, row)
    conn.execute(insert(AuditEntry), rows)
    conn.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .values(last_seq=last_seq, last_hash=last_hash)
    )


def _lock_head(conn: Connection) -> tuple[int, str]:
    """Lock and read the chain head in ``conn``'s transaction, creating it when missing."""
    head = AuditChainHead
    if conn.dialect.name == "sqlite":
        # A write first, so this transaction holds SQLite's write lock before reading.
        conn.execute(update(head).where(head.id == 1).values(last_seq=head.last_seq))
    query = select(head.last_seq, head.last_hash).where(head.id == 1).with_for_update()
    found = conn.execute(query).first()
    if found is None:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            dialect_insert(head)
            .values(id=1, last_seq=0, last_hash=GENESIS_HASH)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        found = conn.execute(query).one()
    return int(found[0]), str(found[1])


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
    """Create the audit tables in a separate SQLite audit file (idempotent)."""
    tables = [Base.metadata.tables[name] for name in ("audit_log", "audit_chain_head")]
    async with database.engine.begin() as conn:
        await conn.run_sync(
            lambda sync: Base.metadata.create_all(sync, tables=tables, checkfirst=True)
        )
