"""Parameters and the Stripe ``event`` object."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medmesh.payments.models import EventRow
from medmesh.payments.objects import unix
from medmesh.payments.params import LIST_FIELDS, Spec, string

LIST = Spec({**LIST_FIELDS, "type": string(64)})
RETRIEVE = Spec({})
#: The API version whose object shapes the events carry.
API_VERSION = "2023-08-16"


def event_object(row: EventRow) -> dict[str, Any]:
    return event_body(row.id, row.type, row.data, row.created)


def event_body(event_id: str, kind: str, data: dict[str, Any], created: datetime) -> dict[str, Any]:
    """The Stripe ``event`` object of an event's values."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": unix(created),
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
