"""Delivering queued Observations to phi-service: each outbox message is posted as one
transaction Bundle (a device's message as a PUT of its FHIR Device); phi answers every conditional create with 201 (made) or 200 (it existed),
so a retry after a lost answer creates nothing twice. Any other answer is retried with backoff
by the platform's outbox worker, and parked after ``DELIVERY_MAX_ATTEMPTS``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import orjson

from medmesh.devices.alerts.events import TOPIC as ALERT_TOPIC
from medmesh.devices.alerts.events import signed_body
from medmesh.devices.config import DevicesSettings
from medmesh.devices.delivery.messages import DEVICE_TOPIC
from medmesh.devices.delivery.repository import backlog, queued_readings
from medmesh.devices.metrics import DevicesMetrics
from medmesh.devices.normalization.observations import device_resource, transaction_bundle
from medmesh.devices.normalization.templates import TemplateSet
from medmesh.platform.background import running
from medmesh.platform.db import Database, utcnow
from medmesh.platform.logging import get_logger
from medmesh.platform.outbox import Deliver, OutboxMessage, OutboxWorker
from medmesh.platform.service_client import ServiceClient

log = get_logger("medmesh.devices.delivery")
FHIR_JSON = "application/fhir+json"


class PhiRefused(Exception):
    """phi-service answered a Bundle with something other than 200 (retried later)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"phi-service answered {status}")
        self.status = status

    def __repr__(self) -> str:
        return f"PhiRefused(status={self.status})"


def phi_delivery(
    database: Database,
    phi: Callable[[], ServiceClient],
    templates: TemplateSet,
    metrics: DevicesMetrics,
    webhooks: httpx.AsyncClient,
    webhook_secret: str,
) -> Deliver:
    """Post a message's Bundle to phi (``phi()`` is the client in use), or an alert event to
    the webhook."""

    async def deliver(message: OutboxMessage) -> None:
        if message.topic == ALERT_TOPIC:
            body, headers = signed_body(webhook_secret, message.payload)
            answer = await webhooks.post(
                message.destination,
                content=body,
                headers={**headers, "Idempotency-Key": message.id},
            )
            answer.raise_for_status()
            return
        if message.topic == DEVICE_TOPIC:
            resource = device_resource(message.payload)
            answer = await phi().put(
                f"/fhir/Device/{resource['id']}",
                json=resource,
                headers={"Content-Type": FHIR_JSON},
            )
            if answer.status_code not in (200, 201):
                raise PhiRefused(answer.status_code)
            return
        async with database.sessionmaker() as session:
            readings = await queued_readings(session, message.payload)
        if not readings:
            return
        bundle = transaction_bundle(templates, {"readings": readings})
        response = await phi().post(
            "/fhir",
            content=orjson.dumps(bundle),
            headers={"Idempotency-Key": message.id, "Content-Type": FHIR_JSON},
        )
        if response.status_code != 200:
            raise PhiRefused(response.status_code)
        created = sum(
            1
            for entry in response.json().get("entry", [])
            if str(entry.get("response", {}).get("location", "")).startswith("Observation/")
            and str(entry.get("response", {}).get("status", "")).startswith("201")
        )
        metrics.delivered.inc(created)

    return deliver


def delivery_worker(
    database: Database, settings: DevicesSettings, deliver: Deliver
) -> OutboxWorker:
    return OutboxWorker(
        database,
        deliver,
        batch_size=settings.delivery_concurrency * 2,
        poll_interval=settings.delivery_poll_seconds,
        max_attempts=settings.delivery_max_attempts,
        base_backoff=settings.delivery_backoff_seconds,
        max_backoff=settings.delivery_max_backoff_seconds,
        lease_seconds=3 * settings.delivery_timeout_seconds,
        concurrency=settings.delivery_concurrency,
    )


@asynccontextmanager
async def backlog_gauges(
    database: Database, metrics: DevicesMetrics, interval: float
) -> AsyncIterator[None]:
    """Keep the backlog, lag and parked gauges current while the block runs."""

    async def refresh() -> None:
        while True:
            try:
                waiting, parked, oldest = await backlog(database)
            except Exception as exc:
                log.warning("delivery_backlog_unread", error=type(exc).__name__)
            else:
                metrics.backlog.set(waiting)
                metrics.parked.set(parked)
                lag = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
                metrics.lag.set(max(0.0, lag))
            await asyncio.sleep(interval)

    async with running(refresh(), "devices-backlog-gauges"):
        yield
