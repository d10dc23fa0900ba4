"""Reading the audit trail: verifying its hash chain and listing records by filter.

The writing side (records, the group-committing :class:`~medmesh.platform.audit.AuditTrail`)
is in :mod:`medmesh.platform.audit`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, select

from medmesh.platform.audit.chain import (
    _HASHED_FIELDS,
    GENESIS_HASH,
    AuditChainHead,
    AuditEntry,
    record_hash,
)
from medmesh.platform.audit.keys import AuditKeys, Checkpoint
from medmesh.platform.audit.trail import ChainReport
from medmesh.platform.db import Database
from medmesh.platform.paging import keyset_page


def _entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in _HASHED_FIELDS}


def _link_problem(entry: AuditEntry, keys: AuditKeys | None, keyed_since: int | None) -> str:
    """Why ``entry``'s link does not verify ("" when it does)."""
    if entry.key_id is None:
        if keyed_since is not None:
            # The insider's move: edit a record, then re-link it and the rest with plain SHA-256.
            return (
                f"record {entry.seq} has a plain SHA-256 link after keyed record {keyed_since} "
                "(rewritten)"
            )
        if record_hash(entry.prev_hash, _entry_dict(entry)) != entry.hash:
            return f"record {entry.seq} does not match its hash (changed)"
        return ""
    key = keys.link_key(entry.key_id) if keys is not None else None
    if key is None:
        return f"record {entry.seq} is linked with key {entry.key_id!r}, which is not configured"
    if record_hash(entry.prev_hash, _entry_dict(entry), key) != entry.hash:
        return f"record {entry.seq} does not match its HMAC link (changed or re-linked)"
    return ""


def _checkpoint_problem(checkpoint: Checkpoint, keys: AuditKeys | None, service: str | None) -> str:
    """Why ``checkpoint`` itself is not to be trusted ("" when it is)."""
    name = f"checkpoint line {checkpoint.line} (record {checkpoint.seq})"
    if keys is None or not keys.has(checkpoint.kid):
        return f"{name} is signed with key {checkpoint.kid!r}, which is not configured"
    expected = keys.sign_checkpoint(checkpoint.kid, checkpoint.fields())
    if not hmac.compare_digest(expected, checkpoint.sig):
        return f"{name} does not match its signature (forged or changed)"
    if service is not None and checkpoint.service != service:
        return f"{name} belongs to service {checkpoint.service!r}"
    if checkpoint.records != checkpoint.seq:
        return f"{name} counts {checkpoint.records} records"
    return ""


async def verify_chain(
    database: Database,
    *,
    keys: AuditKeys | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    service: str | None = None,
    chunk: int = 5000,
) -> ChainReport:
    """Recompute the chain and check it against ``checkpoints``; report the first problem.

    A record is named when its link fails (changed, or re-linked without the key: a plain
    SHA-256 link after a keyed one, an unknown key id, a wrong HMAC), when it is missing or out
    of order, or when the head does not match the log. A checkpoint is named when its signature
    fails, when the record it covers no longer has its hash (rewritten), or when it covers a
    record beyond the log's last one (records deleted at the tail). Without ``keys`` only plain
    SHA-256 links (written before keys existed) can verify.
    """
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    keyed_since: int | None = None
    for checkpoint in checkpoints:
        problem = _checkpoint_problem(checkpoint, keys, service)
        if problem:
            return ChainReport(False, 0, checkpoint.seq, problem, checkpoint.line)
    wanted = {checkpoint.seq for checkpoint in checkpoints}
    seen: dict[int, str] = {}
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
                problem = _link_problem(entry, keys, keyed_since)
                if problem:
                    return ChainReport(False, count, entry.seq, problem)
                if entry.prev_hash != prev_hash:
                    problem = f"record {entry.seq} does not link to record {entry.seq - 1}"
                    return ChainReport(False, count, entry.seq, problem)
                if entry.key_id is not None and keyed_since is None:
                    keyed_since = entry.seq
                if entry.seq in wanted:
                    seen[entry.seq] = entry.hash
                prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
            session.expunge_all()
            if len(entries) < chunk:
                break
        head = await session.get(AuditChainHead, 1)
    last_seq, last_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    if last_seq != count or last_hash != prev_hash:
        problem = f"the chain head is at record {last_seq} but the log ends at record {count}"
        return ChainReport(False, count, count + 1, problem)
    for checkpoint in checkpoints:
        name = f"checkpoint line {checkpoint.line} (record {checkpoint.seq}, {checkpoint.at})"
        if checkpoint.seq > count:
            problem = f"{name} is beyond the last record {count}: records were deleted at the tail"
            return ChainReport(False, count, checkpoint.seq, problem, checkpoint.line)
        if seen.get(checkpoint.seq) != checkpoint.head:
            problem = f"{name} no longer matches record {checkpoint.seq}: the chain was rewritten"
            return ChainReport(False, count, checkpoint.seq, problem, checkpoint.line)
    anchored = max((checkpoint.seq for checkpoint in checkpoints), default=0)
    return ChainReport(True, count, checkpoints=len(checkpoints), anchored_seq=anchored)


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
    query = keyset_page(
        select(AuditEntry).where(and_(True, *conditions)),
        [AuditEntry.seq],
        None if after_seq is None else (after_seq,),
        max(1, min(limit, 1000)),
    )
    async with database.sessionmaker() as session:
        return list((await session.scalars(query)).all())
