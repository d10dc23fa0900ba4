"""The audit trail's tables and hash chain: how a batch of records is linked and committed.

A record's link is ``HMAC-SHA256(link key, prev_hash || canonical fields)`` under the key its
``key_id`` names (:mod:`medmesh.platform.audit.keys`); records written before keys existed
(``key_id`` NULL) carry a plain SHA-256 link and are accepted only as the chain's prefix.

:func:`append_batch` appends on any database inside the caller's transaction (the head row
locked, ``SELECT ... FOR UPDATE`` on PostgreSQL); :class:`SqliteAppender` does the same on a
SQLite audit file with a handful of C calls. :mod:`medmesh.platform.audit` queues and
group-commits the records, :mod:`medmesh.platform.audit.reading` verifies the chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import operator
import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, Index, Integer, String, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Mapped, mapped_column

from medmesh.platform.audit.keys import LinkKey
from medmesh.platform.db import Base, UTCDateTime
from medmesh.platform.db.sqlite import (
    BUSY_MS,
    begin_immediate,
    checkpoint_soon,
    checkpoints_settled,
    file_key,
    off_loop,
)

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
    #: The id of the key whose HMAC links this record; None: a plain SHA-256 link (legacy).
    key_id: Mapped[str | None] = mapped_column(String(64))
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


def _ts_text(ts: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (what strftime would give, at two thirds the cost)."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def record_hash(
    prev_hash: str, row: dict[str, Any], key: LinkKey | None = None, ts_text: str | None = None
) -> str:
    """The link of a record: the hex HMAC-SHA256 under ``key`` of ``prev_hash`` and the
    canonical JSON of ``row``'s linked fields (its ``key_id`` included), or without a key the
    plain SHA-256 of records written before keys existed. ``ts_text``: ``row``'s time as text,
    when the caller has it."""
    body = {name: row[name] for name in _HASHED_FIELDS}
    body["ts"] = ts_text if ts_text is not None else _ts_text(body["ts"])
    if key is None:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()
    body["key_id"] = key.kid
    return key.mac(prev_hash.encode() + orjson.dumps(body, option=orjson.OPT_SORT_KEYS))


def link(
    rows: list[dict[str, Any]], last_seq: int, last_hash: str, key: LinkKey | None = None
) -> tuple[int, str]:
    """Give ``rows`` their ``seq``, ``key_id``, ``prev_hash`` and ``hash`` after the chain's
    head (linked under ``key``); return the new head."""
    kid = key.kid if key is not None else None
    texts: dict[datetime, str] = {}  # the records of a bulk write share their time
    for row in rows:
        last_seq += 1
        row["seq"] = last_seq
        row["key_id"] = kid
        row["prev_hash"] = last_hash
        ts = row["ts"]
        text = texts.get(ts)
        if text is None:
            text = texts[ts] = _ts_text(ts)
        row["hash"] = last_hash = record_hash(last_hash, row, key, text)
    return last_seq, last_hash


class SqliteAppender:
    """Appends a batch to a SQLite audit file with a handful of C calls.

    With the embedded driver (``sqlite+medmesh``, statements on the event loop) the batch is
    written on the loop too: a WAL commit under ``synchronous=NORMAL`` writes but does not sync,
    so it is cheaper than the hop to a worker thread and back (see
    docs/decisions/0009-audit-group-commit.md). The WAL is checkpointed off the loop, as the driver's own
    files are (:func:`~medmesh.platform.db.sqlite.checkpoint_soon`): SQLite's automatic checkpoint
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
        # UTCDateTime's text (its SQLite bind processor, utc_bind_text), and JSON's: the JSON
        # processor gives the serializer's text for every value a record holds
        # (tests/platform/test_audit.py compares them).
        self._processors = [
            c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns
        ]
        self._values = operator.itemgetter(*self._columns)
        self._converted = [
            (i, _json_text if isinstance(c.type, JSON) else proc)
            for i, (c, proc) in enumerate(zip(table.columns, self._processors, strict=True))
            if proc is not None
        ]
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
            # Checkpoints off the loop, as the driver's (platform.db.sqlite.checkpoint_soon): SQLite's
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

    def values(self, row: dict[str, Any]) -> list[Any]:
        """The parameters of ``row``'s INSERT, in column order, as the column types bind them."""
        return self.values_of([row])[0]

    def values_of(self, rows: list[dict[str, Any]]) -> list[list[Any]]:
        """:meth:`values` of each of ``rows``, a value the rows share (the same object: the
        caller, details and time of :meth:`AuditTrail.record_each`'s records) converted once."""
        converted = self._converted
        done: dict[tuple[int, int], Any] = {}  # (column, id of the value): every value lives on
        out = []
        for row in rows:
            values = list(self._values(row))
            for i, convert in converted:
                value = values[i]
                key = (i, id(value))
                found = done.get(key, done)
                if found is done:
                    found = done[key] = convert(value)
                values[i] = found
            out.append(values)
        return out

    async def append(self, rows: list[dict[str, Any]], key: LinkKey | None = None) -> None:
        """Chain (under ``key``) and commit ``rows``."""
        if not self.on_loop:
            await asyncio.to_thread(self._append_blocking, rows, key)
            return
        conn = self._connection()
        # Another process (or a second trail on this file) may write: wait for it off the loop.
        await begin_immediate(conn, self.timeout)
        self._write(conn, rows, key)
        if self.key is not None:
            checkpoint_soon(self.key)

    def _append_blocking(self, rows: list[dict[str, Any]], key: LinkKey | None) -> None:
        with off_loop():
            self.append_now(rows, key)

    def append_now(self, rows: list[dict[str, Any]], key: LinkKey | None = None) -> None:
        """Chain (under ``key``) and commit ``rows`` on this thread, waiting for another
        writer with SQLite's busy handler: for a process without an event loop (phi's import
        writers). The rows get their ``seq`` and ``hash``."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        self._write(conn, rows, key)

    def _write(
        self, conn: sqlite3.Connection, rows: list[dict[str, Any]], key: LinkKey | None
    ) -> None:
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
            last_seq, last_hash = link(rows, int(found[0]), str(found[1]), key)
            conn.executemany(self._insert, self.values_of(rows))
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


def append_batch(conn: Connection, rows: list[dict[str, Any]], key: LinkKey | None = None) -> None:
    """Chain ``rows`` (under ``key``) after the locked head and insert them, in ``conn``'s
    transaction."""
    last_seq, last_hash = link(rows, *_lock_head(conn), key)
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
