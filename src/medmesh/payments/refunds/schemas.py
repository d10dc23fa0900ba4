"""Parameters and the Stripe ``refund`` object."""

from __future__ import annotations

from typing import Any

from medmesh.payments.models import RefundRow
from medmesh.payments.objects import unix
from medmesh.payments.params import LIST_FIELDS, Spec, integer, metadata, string

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
CREATE = Spec(
    {
        "payment_intent": string(255),
        "charge": string(255),
        "amount": integer(1),
        "reason": string(32, choices=REASONS),
        "metadata": metadata,
    }
)
UPDATE = Spec({"metadata": metadata})
LIST = Spec({**LIST_FIELDS, "payment_intent": string(255), "charge": string(255)})


def refund_object(row: RefundRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "refund",
        "amount": row.amount,
        "balance_transaction": None,
        "charge": row.charge_id,
        "created": unix(row.created),
        "currency": row.currency,
        "metadata": dict(row.metadata_),
        "payment_intent": row.payment_intent_id,
        "reason": row.reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": row.status,
        "transfer_reversal": None,
    }
