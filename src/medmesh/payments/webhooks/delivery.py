"""Events to webhook endpoints: each event is enqueued through ``platform.outbox`` for every
enabled endpoint that subscribes to its type, in the transaction of the change that caused it,
and delivered by the outbox worker signed as Stripe signs
(``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>``),
retried with exponential backoff while it fails. The receiver drops repeats by the event id."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.webhooks.repository import WebhookEndpointRepository
from medmesh.platform.db import Database
from medmesh.platform.outbox import Deliver, OutboxMessage, enqueue

TOPIC = "payments.webhook"


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """``t=...,v1=...`` over ``"{t}.{body}"``, as Stripe's libraries verify it."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def enqueue_event(session: AsyncSession, event: dict[str, Any]) -> None:
    """Queue ``event`` for every enabled endpoint that subscribes to its type."""
    for endpoint in await WebhookEndpointRepository(session).enabled():
        if "*" in endpoint.enabled_events or event["type"] in endpoint.enabled_events:
            await enqueue(
                session,
                topic=TOPIC,
                destination=endpoint.url,
                payload=event,
                headers={"webhook_endpoint": endpoint.id},
                dedup_key=f"{event['id']}:{endpoint.id}",
            )


def signed_delivery(database: Database, client: httpx.AsyncClient) -> Deliver:
    """The outbox ``deliver`` of webhooks: signs with the endpoint's current secret at send
    time; a deleted or disabled endpoint's messages are dropped; a non-2xx answer is retried."""

    async def deliver(message: OutboxMessage) -> None:
        endpoint_id = message.headers.get("webhook_endpoint", "")
        async with database.sessionmaker() as session:
            endpoint = await WebhookEndpointRepository(session).get(endpoint_id)
            secret = endpoint.secret if endpoint is not None else None
            enabled = endpoint is not None and endpoint.status == "enabled"
        if secret is None or not enabled:
            return
        body = orjson.dumps(message.payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(secret, body, int(time.time())),
            "User-Agent": "medmesh-payments/webhooks",
        }
        response = await client.post(message.destination, content=body, headers=headers)
        response.raise_for_status()

    return deliver
