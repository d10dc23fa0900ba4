"""Transactional outbox: messages written with the change that causes them, delivered later.

:func:`enqueue` adds a message to the caller's session, so it commits or rolls
back with the domain change. :class:`OutboxWorker` claims due messages under a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one atomic ``UPDATE ...
RETURNING`` on SQLite), delivers them, and marks each delivered or schedules a
retry with exponential backoff and jitter; a message that fails ``max_attempts``
times is parked (``dead_at``) and kept for an operator. A worker that dies
mid-delivery leaves its messages claimable once the lease expires: delivery is
at least once, and receivers are idempotent (the message id is the natural
``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import (
    JSON,
    ColumnElement,
    Index,
    Integer,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from medmesh.platform.db import Base, Database, UTCDateTime, WriteTransaction, utcnow
from medmesh.platform.logging import get_logger, scrub_text

__all__ = [
    "OutboxMessage",
    "OutboxWorker",
    "QueuedMessage",
    "enqueue",
    "enqueue_all",
    "json_post_delivery",
]

log = get_logger("medmesh.platform.outbox")

_MAX_ERROR = 500


class OutboxMessage(Base):
    """A message waiting for (or done with) delivery (a row of ``outbox_messages``)."""

    __tablename__ = "outbox_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    topic: Mapped[str] = mapped_column(String(128))
    destination: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[Any] = mapped_column(JSON)
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set when the message was parked after ``max_attempts`` failures.
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(_MAX_ERROR))

    __table_args__ = (
        Index(
            "ix_outbox_messages_due",
            "available_at",
            postgresql_where=text("delivered_at IS NULL AND dead_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL AND dead_at IS NULL"),
        ),
    )


async def enqueue(
    session: AsyncSession,
    *,
    topic: str,
    destination: str,
    payload: Any,
    headers: dict[str, str] | None = None,
    dedup_key: str | None = None,
) -> str:
    """Add a message to ``session``'s transaction (never commits); return its id.

    With a ``dedup_key`` already enqueued, nothing is added and the existing
    message's id is returned, without failing the caller's transaction.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "destination": destination,
        "payload": payload,
        "headers": dict(headers or {}),
        "dedup_key": dedup_key,
        "created_at": now,
        "available_at": now,
        "attempts": 0,
    }
    if dedup_key is None:
        session.add(OutboxMessage(**values))
        return str(values["id"])
    dialect = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(OutboxMessage.id)
    )
    inserted = (await session.execute(statement)).scalar_one_or_none()
    if inserted is not None:
        return str(inserted)
    existing = select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)
    return str((await session.execute(existing)).scalar_one())


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message for :func:`enqueue_all` (the arguments of :func:`enqueue`)."""

    topic: str
    destination: str
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    dedup_key: str | None = None


#: ``INSERT ... ON CONFLICT (dedup_key) DO NOTHING`` per dialect: a repeated key adds nothing.
_INSERT_NEW = {
    "postgresql": postgresql.insert(OutboxMessage).on_conflict_do_nothing(
        index_elements=["dedup_key"]
    ),
    "sqlite": sqlite.insert(OutboxMessage).on_conflict_do_nothing(index_elements=["dedup_key"]),
}


async def enqueue_all(tx: WriteTransaction, messages: Sequence[QueuedMessage]) -> None:
    """Add ``messages`` to the write transaction ``tx`` (one insert), as :func:`enqueue` adds
    one to a session: committed or rolled back with it; a message whose ``dedup_key`` is
    already enqueued adds nothing."""
    if not messages:
        return
    now = utcnow()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "topic": message.topic,
            "destination": message.destination,
            "payload": message.payload,
            "headers": dict(message.headers),
            "dedup_key": message.dedup_key,
            "created_at": now,
            "available_at": now,
            "attempts": 0,
            "locked_until": None,
            "delivered_at": None,
            "dead_at": None,
            "last_error": None,
        }
        for message in messages
    ]
    await tx.execute(_INSERT_NEW[tx.dialect_name], rows if len(rows) > 1 else rows[0])


Deliver = Callable[[OutboxMessage], Awaitable[None]]


def json_post_delivery(client: httpx.AsyncClient) -> Deliver:
    """A ``deliver`` that POSTs the payload as JSON to the destination URL.

    The message id goes in ``Idempotency-Key`` so the receiver can drop repeats;
    any non-2xx answer counts as a failure and is retried.
    """

    async def deliver(message: OutboxMessage) -> None:
        headers = {"Idempotency-Key": message.id, **message.headers}
        response = await client.post(message.destination, json=message.payload, headers=headers)
        response.raise_for_status()

    return deliver


def _describe(exc: BaseException) -> str:
    # Error text may quote what the peer echoed back; keep it short and scrubbed.
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "TimeoutError: delivery exceeded the lease"
    return scrub_text(f"{type(exc).__name__}: {exc}")[:_MAX_ERROR]


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        OutboxMessage.delivered_at.is_(None),
        OutboxMessage.dead_at.is_(None),
        OutboxMessage.available_at <= now,
        or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
    )


class OutboxWorker:
    """Claims due outbox messages, delivers them, and records the outcome."""

    def __init__(
        self,
        database: Database,
        deliver: Deliver,
        *,
        batch_size: int = 50,
        poll_interval: float = 0.5,
        max_attempts: int = 20,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
        lease_seconds: float = 30.0,
        concurrency: int = 10,
    ) -> None:
        self.database = database
        self.deliver = deliver
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.lease_seconds = lease_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start delivering in the background."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        """Stop claiming; let in-flight deliveries finish and be recorded."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    def wake(self) -> None:
        """Look for due messages now (call after committing an enqueue)."""
        self._wakeup.set()

    async def backlog(self) -> int:
        """How many messages are neither delivered nor parked."""
        query = select(func.count()).where(
            OutboxMessage.delivered_at.is_(None), OutboxMessage.dead_at.is_(None)
        )
        async with self.database.sessionmaker() as session:
            return int((await session.execute(query)).scalar_one())

    async def parked(self) -> int:
        """How many messages were given up on after ``max_attempts`` failures."""
        query = select(func.count()).where(OutboxMessage.dead_at.is_not(None))
        async with self.database.sessionmaker() as session:
            return int((await session.execute(query)).scalar_one())

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number ``attempts``: exponential, capped, with jitter."""
        delay = min(self.max_backoff, self.base_backoff * 2.0 ** max(0, attempts - 1))
        return delay * random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not security

    async def run_once(self) -> int:
        """Claim one batch of due messages and deliver it; return how many were claimed."""
        messages, lease = await self._claim()
        if not messages:
            return 0
        deadline = asyncio.get_running_loop().time() + self.lease_seconds * 0.9
        outcomes = await asyncio.gather(*(self._attempt(m, deadline) for m in messages))
        await self._record(list(zip(messages, outcomes, strict=True)), lease)
        return len(messages)

    async def _attempt(self, message: OutboxMessage, deadline: float) -> BaseException | None:
        async with self._slots:
            try:
                # Past the lease another worker may claim the message: give up before that.
                async with asyncio.timeout_at(deadline):
                    await self.deliver(message)
            except Exception as exc:
                log.warning(
                    "outbox_delivery_failed",
                    message_id=message.id,
                    topic=message.topic,
                    attempts=message.attempts,
                    error=_describe(exc),
                )
                return exc
        return None

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                claimed = await self.run_once()
                failures = 0
            except Exception as exc:
                failures += 1
                claimed = 0
                log.error("outbox_worker_error", error=type(exc).__name__, failures=failures)
            if claimed >= self.batch_size and not self._stopping:
                continue
            pause = self.poll_interval * min(2**failures, 60)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=pause)
            self._wakeup.clear()

    async def _transaction(self, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        if self.database.is_sqlite:
            async with self.database.write_lock, self.database.engine.begin() as conn:
                return await work(conn)
        async with self.database.engine.begin() as conn:
            return await work(conn)

    async def _claim(self) -> tuple[list[OutboxMessage], datetime]:
        now = utcnow()
        lease = now + timedelta(seconds=self.lease_seconds)
        table = OutboxMessage
        due = select(table.id).where(_due(now)).order_by(table.available_at).limit(self.batch_size)

        async def claim(conn: AsyncConnection) -> list[OutboxMessage]:
            if conn.dialect.name == "postgresql":
                ids = (await conn.execute(due.with_for_update(skip_locked=True))).scalars().all()
                if not ids:
                    return []
                target = table.id.in_(ids)
            else:
                target = table.id.in_(due.scalar_subquery())
            claimed = await conn.execute(
                update(table)
                .where(target)
                .values(locked_until=lease, attempts=table.attempts + 1)
                .returning(*table.__table__.c)
            )
            return [OutboxMessage(**row._mapping) for row in claimed]

        messages: list[OutboxMessage] = await self._transaction(claim)
        messages.sort(key=lambda m: m.available_at)
        return messages, lease

    async def _record(
        self, results: list[tuple[OutboxMessage, BaseException | None]], lease: datetime
    ) -> None:
        table = OutboxMessage
        now = utcnow()
        delivered = [m.id for m, error in results if error is None]
        retries: list[dict[str, Any]] = []
        for message, error in results:
            if error is None:
                continue
            dead = message.attempts >= self.max_attempts
            retries.append(
                {
                    "b_id": message.id,
                    "b_error": _describe(error),
                    "b_dead": now if dead else None,
                    "b_available": now + timedelta(seconds=self.backoff(message.attempts)),
                }
            )
            if dead:
                log.error("outbox_message_parked", message_id=message.id, topic=message.topic)
        # ``locked_until == lease`` fences out a worker whose lease has since been taken over.
        mine = table.locked_until == lease

        async def write(conn: AsyncConnection) -> None:
            if delivered:
                await conn.execute(
                    update(table)
                    .where(table.id.in_(delivered), mine)
                    .values(delivered_at=now, locked_until=None, last_error=None)
                )
            if retries:
                await conn.execute(
                    update(table)
                    .where(table.id == bindparam("b_id"), mine)
                    .values(
                        locked_until=None,
                        last_error=bindparam("b_error"),
                        dead_at=bindparam("b_dead", type_=UTCDateTime),
                        available_at=bindparam("b_available", type_=UTCDateTime),
                    ),
                    retries,
                )

        await self._transaction(write)
