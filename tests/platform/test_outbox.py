"""The transactional outbox: delivered only when committed, retried, never lost, never doubled."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from medmesh.platform.db import Base, Database, write_transaction
from medmesh.platform.outbox import (
    OutboxMessage,
    OutboxWorker,
    QueuedMessage,
    enqueue,
    enqueue_all,
    json_post_delivery,
)
from medmesh.platform.testing import serve_app


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield db
    finally:
        await db.dispose()


class Receiver:
    """A webhook receiver that fails its first calls, then accepts each key once."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[float] = []
        self.accepted: Counter[str] = Counter()
        self.bodies: list[object] = []
        self.delivered = asyncio.Event()
        self.app = Starlette(routes=[Route("/hooks", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> JSONResponse:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.fail_first:
            return JSONResponse({"error": "try later"}, status_code=503)
        key = request.headers["idempotency-key"]
        self.accepted[key] += 1
        self.bodies.append(await request.json())
        self.delivered.set()
        return JSONResponse({"ok": True})


async def add_message(database: Database, destination: str, **kw: object) -> str:
    async with database.unit_of_work() as session:
        return await enqueue(
            session,
            topic="payment_intent.succeeded",
            destination=destination,
            payload={"id": "pi_1", "amount": 1250},
            **kw,  # type: ignore[arg-type]
        )


async def stored(database: Database, message_id: str) -> OutboxMessage:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
    assert found is not None
    return found


async def test_rolled_back_message_is_never_delivered(database: Database) -> None:
    delivered: list[str] = []

    async def deliver(message: OutboxMessage) -> None:
        delivered.append(message.id)

    async def failing_change() -> None:
        async with database.unit_of_work() as session:
            await enqueue(session, topic="t", destination="http://x", payload={})
            await enqueue(session, topic="t", destination="http://x", payload={}, dedup_key="k")
            raise RuntimeError("the domain change failed")

    worker = OutboxWorker(database, deliver)
    with pytest.raises(RuntimeError):
        await failing_change()

    assert await worker.run_once() == 0
    assert await worker.backlog() == 0
    assert delivered == []


async def test_failures_retry_with_growing_delays_then_deliver_once(database: Database) -> None:
    receiver = Receiver(fail_first=3)
    async with serve_app(receiver.app) as base_url, httpx.AsyncClient() as client:
        worker = OutboxWorker(
            database, json_post_delivery(client), poll_interval=0.01, base_backoff=0.1
        )
        message_id = await add_message(database, f"{base_url}/hooks")
        assert await worker.backlog() == 1
        await worker.start()
        try:
            async with asyncio.timeout(10):
                await receiver.delivered.wait()
            await asyncio.sleep(0.2)  # no stray redelivery after success
        finally:
            await worker.stop()

    assert receiver.accepted == {message_id: 1}
    assert receiver.bodies == [{"id": "pi_1", "amount": 1250}]
    assert len(receiver.calls) == 4
    gaps = [b - a for a, b in zip(receiver.calls, receiver.calls[1:], strict=False)]
    # Retry n waits at least 3/4 of base_backoff * 2**(n-1) (jitter only shortens by a quarter);
    # a busy machine can only lengthen a gap.
    assert gaps[0] >= 0.07
    assert gaps[1] >= 0.14
    assert gaps[2] >= 0.28
    row = await stored(database, message_id)
    assert row.delivered_at is not None
    assert row.attempts == 4
    assert row.last_error is None


async def test_backoff_doubles_within_its_jitter_up_to_the_cap(database: Database) -> None:
    async def deliver(message: OutboxMessage) -> None:
        return None

    worker = OutboxWorker(database, deliver, base_backoff=1.0, max_backoff=10.0)
    for attempts, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        delays = [worker.backoff(attempts) for _ in range(50)]
        assert all(0.75 * full <= delay <= full for delay in delays), (attempts, delays)


async def test_message_is_parked_after_max_attempts(database: Database) -> None:
    async def deliver(message: OutboxMessage) -> None:
        raise ConnectionError("peer is down")

    worker = OutboxWorker(database, deliver, max_attempts=3, base_backoff=0)
    message_id = await add_message(database, "http://127.0.0.1:1/hooks")
    for _ in range(5):
        await worker.run_once()

    row = await stored(database, message_id)
    assert row.attempts == 3
    assert row.dead_at is not None
    assert row.delivered_at is None
    assert row.last_error == "ConnectionError: peer is down"
    assert await worker.backlog() == 0
    assert await worker.parked() == 1


async def test_dedup_key_enqueues_once(database: Database) -> None:
    first = await add_message(database, "http://x/hooks", dedup_key="pi_1:succeeded")
    second = await add_message(database, "http://x/hooks", dedup_key="pi_1:succeeded")
    assert first == second
    async with httpx.AsyncClient() as client:
        worker = OutboxWorker(database, json_post_delivery(client))
        assert await worker.backlog() == 1


async def test_enqueue_all_delivers_what_its_write_transaction_commits(database: Database) -> None:
    delivered: list[tuple[str, object, dict[str, str]]] = []

    async def deliver(message: OutboxMessage) -> None:
        delivered.append((message.destination, message.payload, message.headers))

    async def enqueue_then_fail() -> None:
        async with write_transaction(database) as tx:
            await enqueue_all(tx, [QueuedMessage("t", "http://x/lost", {"n": 0})])
            raise RuntimeError("the domain change failed")

    messages = [
        QueuedMessage("t", "http://x/a", {"n": 1}, {"h": "1"}, dedup_key="evt_1:we_1"),
        QueuedMessage("t", "http://x/b", {"n": 2}),
    ]
    async with write_transaction(database) as tx:
        await enqueue_all(tx, messages)
    async with write_transaction(database) as tx:
        # A repeated dedup key adds nothing; a single message is one row too.
        await enqueue_all(tx, [QueuedMessage("t", "http://x/a", {"n": 9}, dedup_key="evt_1:we_1")])
        await enqueue_all(tx, [])
    with pytest.raises(RuntimeError):
        await enqueue_then_fail()

    worker = OutboxWorker(database, deliver)
    assert await worker.run_once() == 2
    assert sorted(delivered, key=str) == [
        ("http://x/a", {"n": 1}, {"h": "1"}),
        ("http://x/b", {"n": 2}, {}),
    ]


async def test_crash_mid_delivery_is_redelivered_after_lease(database: Database) -> None:
    delivered: list[str] = []
    claimed = asyncio.Event()

    async def hang(message: OutboxMessage) -> None:
        claimed.set()
        await asyncio.sleep(3600)

    async def deliver(message: OutboxMessage) -> None:
        delivered.append(message.id)

    crashing = OutboxWorker(database, hang, lease_seconds=0.5)
    survivor = OutboxWorker(database, deliver, lease_seconds=0.5)
    message_id = await add_message(database, "http://x/hooks")
    crash = asyncio.create_task(crashing.run_once())
    await claimed.wait()
    crash.cancel()  # the process "dies" mid-delivery, holding the lease
    with pytest.raises(asyncio.CancelledError):
        await crash

    assert await survivor.run_once() == 0  # still leased
    await asyncio.sleep(0.5)
    assert await survivor.run_once() == 1
    assert delivered == [message_id]
    assert (await stored(database, message_id)).attempts == 2


async def test_wake_delivers_without_waiting_for_the_poll(database: Database) -> None:
    delivered = asyncio.Event()

    async def deliver(message: OutboxMessage) -> None:
        delivered.set()

    worker = OutboxWorker(database, deliver, poll_interval=30)
    await worker.start()
    try:
        await asyncio.sleep(0.05)  # the worker is now idle, waiting for its poll
        await add_message(database, "http://x/hooks")
        worker.wake()
        async with asyncio.timeout(20):  # well inside the 30 s poll
            await delivered.wait()
    finally:
        await worker.stop()


async def test_stop_finishes_in_flight_deliveries(database: Database) -> None:
    started = asyncio.Event()

    async def slow(message: OutboxMessage) -> None:
        started.set()
        await asyncio.sleep(0.2)

    worker = OutboxWorker(database, slow, poll_interval=0.01)
    await add_message(database, "http://x/hooks")
    await worker.start()
    await started.wait()
    await worker.stop()
    assert await worker.backlog() == 0


async def test_two_workers_never_deliver_a_message_twice(database_url: str) -> None:
    databases = [Database(database_url), Database(database_url)]
    async with databases[0].engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    in_flight: set[str] = set()
    deliveries: Counter[str] = Counter()
    overlaps: list[str] = []
    all_delivered = asyncio.Event()

    async def deliver(message: OutboxMessage) -> None:
        if message.id in in_flight:
            overlaps.append(message.id)
        in_flight.add(message.id)
        await asyncio.sleep(0.002)
        deliveries[message.id] += 1
        in_flight.discard(message.id)
        if len(deliveries) == 300:
            all_delivered.set()

    workers = [OutboxWorker(db, deliver, batch_size=20, poll_interval=0.005) for db in databases]
    try:
        async with databases[0].unit_of_work() as session:
            ids = [
                await enqueue(session, topic="t", destination="http://x", payload={"n": n})
                for n in range(300)
            ]
        for worker in workers:
            await worker.start()
        async with asyncio.timeout(30):
            await all_delivered.wait()
        for worker in workers:
            await worker.stop()  # graceful: the last deliveries are recorded
        remaining = await workers[0].backlog()
    finally:
        for worker in workers:
            await worker.stop()
        for db in databases:
            await db.dispose()

    assert overlaps == []
    assert deliveries == dict.fromkeys(ids, 1)
    assert remaining == 0
