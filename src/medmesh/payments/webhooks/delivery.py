"""Events to webhook endpoints: each event is enqueued through ``platform.outbox`` for every
enabled endpoint that subscribes to its type, in the transaction of the change that caused it,
and delivered by the outbox worker signed as Stripe signs
(``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>``),
retried with exponential backoff while it fails. The receiver drops repeats by the event id."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.webhooks.repository import EnabledEndpoint, WebhookEndpointRepository
from medmesh.platform.db import Database, utcnow
from medmesh.platform.outbox import Deliver, OutboxMessage, QueuedMessage, enqueue

TOPIC = "payments.webhook"


def signature_header(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """``t=...,v1=...`` over ``"{t}.{body}"``, one ``v1`` per secret (two while a rolled
    secret's overlap lasts), as Stripe's libraries verify it: any matching ``v1`` passes."""
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for secret in secrets:
        parts.append("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    return ",".join(parts)


async def enqueue_event(session: AsyncSession, event: dict[str, Any]) -> None:
    """Queue ``event`` for every enabled endpoint that subscribes to its type."""
    endpoints = await WebhookEndpointRepository(session).enabled_in_transaction()
    for message in webhook_messages(endpoints, event):
        await enqueue(
            session,
            topic=message.topic,
            destination=message.destination,
            payload=message.payload,
            headers=message.headers,
            dedup_key=message.dedup_key,
        )


def webhook_messages(
    endpoints: Sequence[EnabledEndpoint], event: dict[str, Any]
) -> list[QueuedMessage]:
    """The outbox messages of ``event``: one for each of ``endpoints`` subscribing to its type."""
    return [
        QueuedMessage(
            topic=TOPIC,
            destination=endpoint.url,
            payload=event,
            headers={"webhook_endpoint": endpoint.id},
            dedup_key=f"{event['id']}:{endpoint.id}",
        )
        for endpoint in endpoints
        if "*" in endpoint.enabled_events or event["type"] in endpoint.enabled_events
    ]


def signed_delivery(database: Database, client: httpx.AsyncClient) -> Deliver:
    """The outbox ``deliver`` of webhooks: signs at send time with the endpoint's secret (and
    its previous one while that is still valid); a deleted or disabled endpoint's messages are dropped; a non-2xx answer is retried."""

    async def deliver(message: OutboxMessage) -> None:
        endpoint_id = message.headers.get("webhook_endpoint", "")
        async with database.sessionmaker() as session:
            endpoint = await WebhookEndpointRepository(session).get(endpoint_id)
            if endpoint is None or endpoint.status != "enabled":
                return
            keys = [endpoint.secret]
            expires = endpoint.previous_secret_expires
            if endpoint.previous_secret and expires is not None and expires > utcnow():
                keys.append(endpoint.previous_secret)
        body = orjson.dumps(message.payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(keys, body, int(time.time())),
            "User-Agent": "medmesh-payments/webhooks",
        }
        response = await client.post(message.destination, content=body, headers=headers)
        response.raise_for_status()

    return deliver
