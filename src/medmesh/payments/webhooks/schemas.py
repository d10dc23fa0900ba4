"""Parameters and the Stripe ``webhook_endpoint`` object."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from medmesh.payments.errors import InvalidRequest
from medmesh.payments.models import WebhookEndpointRow
from medmesh.payments.objects import unix
from medmesh.payments.params import (
    LIST_FIELDS,
    Check,
    Spec,
    boolean,
    integer,
    metadata,
    string,
    string_list,
)
from medmesh.platform.outbox import OutboxMessage

#: The event types the gateway sends (``*`` subscribes to all of them).
EVENT_TYPES = frozenset(
    {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "payment_method.attached",
        "payment_method.detached",
        "payment_method.updated",
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "refund.created",
        "refund.updated",
    }
)
_URL_LENGTH = string(2048)


def _url(name: str, value: Any) -> str:
    url: str = _URL_LENGTH.run(name, value)
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed host, such as an unclosed IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest("Invalid URL: it must be an absolute http or https URL", param=name)
    return url


def _events(name: str, value: Any) -> list[str]:
    values: list[str] = string_list.run(name, value)
    unknown = [v for v in values if v != "*" and v not in EVENT_TYPES]
    if unknown or not values:
        raise InvalidRequest(
            f"Invalid {name}: each must be * or an event type this gateway sends", param=name
        )
    return sorted(set(values))


#: An absolute http or https URL.
URL = Check(_url, {"type": "string", "maxLength": 2048, "pattern": "^https?://[^/?#]+"})
#: ``*`` or event types the gateway sends, at least one.
ENABLED_EVENTS = Check(
    _events, {"type": "string", "enum": sorted(EVENT_TYPES | {"*"})}, shape="list"
)
CREATE = Spec(
    {
        "url": URL,
        "enabled_events": ENABLED_EVENTS,
        "description": string(1000),
        "metadata": metadata,
        "api_version": string(32),
    },
    required=frozenset({"url", "enabled_events"}),
)
UPDATE = Spec(
    {
        "url": URL,
        "enabled_events": ENABLED_EVENTS,
        "description": string(1000),
        "metadata": metadata,
        "disabled": boolean,
    }
)
LIST = Spec(dict(LIST_FIELDS))
ROLL = Spec({"expires_in": integer(0, 7 * 24 * 3600)})
#: How long a rolled secret keeps signing when ``expires_in`` is not given (seconds).
DEFAULT_OVERLAP = 24 * 3600


def webhook_endpoint_object(
    row: WebhookEndpointRow, *, with_secret: bool = False
) -> dict[str, Any]:
    """The endpoint; its ``secret`` only in the answer that created it (as Stripe does)."""
    obj: dict[str, Any] = {
        "id": row.id,
        "object": "webhook_endpoint",
        "api_version": None,
        "application": None,
        "created": unix(row.created),
        "description": row.description,
        "enabled_events": list(row.enabled_events),
        "livemode": False,
        "metadata": dict(row.metadata_),
        "status": row.status,
        "url": row.url,
    }
    if with_secret:
        obj["secret"] = row.secret
    return obj


def delivery_object(message: OutboxMessage) -> dict[str, Any]:
    """One event's delivery to an endpoint: its attempts so far and how it stands."""
    if message.delivered_at is not None:
        status = "delivered"
    elif message.dead_at is not None:
        status = "failed"
    else:
        status = "pending"
    return {
        "object": "webhook_delivery",
        "event": message.payload.get("id") if isinstance(message.payload, dict) else None,
        "type": message.payload.get("type") if isinstance(message.payload, dict) else None,
        "status": status,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "created": unix(message.created_at),
        "next_attempt": unix(message.available_at) if status == "pending" else None,
        "delivered": unix(message.delivered_at),
    }
