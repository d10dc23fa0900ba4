"""Alert events (``alert.opened``, ``alert.acknowledged``, ``alert.resolved``) queued through the
outbox in the transaction of the change, and delivered to ``ALERT_WEBHOOK_URL`` signed with
``ALERT_WEBHOOK_SECRET``: ``Medmesh-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"{t}.{body}">``, the scheme of Stripe's webhooks."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import AlertRow
from medmesh.platform.outbox import enqueue

TOPIC = "devices.alert"
SIGNATURE_HEADER = "Medmesh-Signature"


def alert_fields(row: AlertRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "kind": row.kind,
        "severity": row.severity,
        "device_id": row.device_id,
        "patient": row.patient_ref,
        "metric": row.metric,
        "status": row.status,
        "opened_at": row.opened_at.isoformat(),
        "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
    }


async def enqueue_alert_event(
    session: AsyncSession, row: AlertRow, event: str, webhook_url: str
) -> None:
    """Queue ``event`` for the webhook (nothing when no webhook is configured)."""
    if not webhook_url:
        return
    await enqueue(
        session,
        topic=TOPIC,
        destination=webhook_url,
        payload={"type": event, "alert": alert_fields(row)},
    )


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Medmesh-Signature`` value of ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def signed_body(secret: str, payload: Any) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    return body, {SIGNATURE_HEADER: sign(secret, body), "Content-Type": "application/json"}
