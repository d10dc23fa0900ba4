"""Reading the audit trail: verifying its hash chain and listing records by filter.

The writing side (records, the group-committing :class:`~medmesh.platform.audit.AuditTrail`)
is in :mod:`medmesh.platform.audit`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, select

from medmesh.platform.audit import ChainReport
from medmesh.platform.audit_chain import (
    _HASHED_FIELDS,
    GENESIS_HASH,
    AuditChainHead,
    AuditEntry,
    record_hash,
)
from medmesh.platform.db import Database


def _entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in _HASHED_FIELDS}


async def verify_chain(database: Database, *, chunk: int = 5000) -> ChainReport:
    """Recompute the chain and report the first changed, removed or reordered record."""
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    async with database.sessionmaker() as session:
        while True:
            entries = (
                await session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq >= expected_seq)
                    .order_by(AuditEntry.seq)
                    .limit(chunk)
                )
            ).all()
            for entry in entries:
                if entry.seq != expected_seq:
                    problem = f"record {expected_seq} is missing (next is {entry.seq})"
                    return ChainReport(False, count, expected_seq, problem)
                if record_hash(entry.prev_hash, _entry_dict(entry)) != entry.hash:
                    problem = f"record {entry.seq} does not match its hash (changed)"
                    return ChainReport(False, count, entry.seq, problem)
                if entry.prev_hash != prev_hash:
                    problem = f"record {entry.seq} does not link to record {entry.seq - 1}"
                    return ChainReport(False, count, entry.seq, problem)
                prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
            session.expunge_all()
            if len(entries) < chunk:
                break
        head = await session.get(AuditChainHead, 1)
    last_seq, last_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    if last_seq != count or last_hash != prev_hash:
        problem = f"the chain head is at record {last_seq} but the log ends at record {count}"
        return ChainReport(False, count, count + 1, problem)
    return ChainReport(True, count)


def _mentions_patient(dialect: str, patient: str) -> ColumnElement[bool]:
    column = AuditEntry.patient_ids
    if dialect == "postgresql":
        return column.op("@>")(func.jsonb_build_array(patient))
    members = func.json_each(column).table_valued("value")
    return exists(select(literal(1)).select_from(members).where(members.c.value == patient))


async def list_records(
    database: Database,
    *,
    patient: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after_seq: int | None = None,
) -> list[AuditEntry]:
    """Audit records matching every given filter, oldest first; page on with ``after_seq``.

    ``since`` is inclusive and ``until`` exclusive; ``limit`` is capped at 1000.
    """
    conditions: list[ColumnElement[bool]] = []
    if patient is not None:
        dialect = "postgresql" if not database.is_sqlite else "sqlite"
        conditions.append(_mentions_patient(dialect, patient))
    if actor is not None:
        conditions.append(AuditEntry.actor == actor)
    if action is not None:
        conditions.append(AuditEntry.action == action)
    if since is not None:
        conditions.append(AuditEntry.ts >= since)
    if until is not None:
        conditions.append(AuditEntry.ts < until)
    if after_seq is not None:
        conditions.append(AuditEntry.seq > after_seq)
    query = (
        select(AuditEntry)
        .where(and_(True, *conditions))
        .order_by(AuditEntry.seq)
        .limit(max(1, min(limit, 1000)))
    )
    async with database.sessionmaker() as session:
        return list((await session.scalars(query)).all())
