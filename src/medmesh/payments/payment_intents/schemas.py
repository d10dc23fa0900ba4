"""Parameters and the Stripe ``payment_intent`` object."""

from __future__ import annotations

from typing import Any

from medmesh.payments.models import PaymentIntentRow
from medmesh.payments.objects import unix
from medmesh.payments.params import (
    LIST_FIELDS,
    Spec,
    boolean,
    currency,
    integer,
    metadata,
    nested,
    string,
    string_list,
)

CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
_AUTOMATIC = Spec({"enabled": boolean, "allow_redirects": string(16, choices=("always", "never"))})

CREATE = Spec(
    {
        "amount": integer(1),
        "currency": currency,
        "customer": string(255),
        "payment_method": string(255),
        "payment_method_types": string_list,
        "automatic_payment_methods": nested(_AUTOMATIC),
        "capture_method": string(32, choices=CAPTURE_METHODS),
        "confirmation_method": string(16, choices=("automatic", "manual")),
        "confirm": boolean,
        "description": string(1000),
        "receipt_email": string(512),
        "return_url": string(2048),
        "metadata": metadata,
    },
    required=frozenset({"amount", "currency"}),
)
UPDATE = Spec(
    {
        "amount": integer(1),
        "currency": currency,
        "customer": string(255),
        "payment_method": string(255),
        "payment_method_types": string_list,
        "capture_method": string(32, choices=CAPTURE_METHODS),
        "description": string(1000),
        "receipt_email": string(512),
        "metadata": metadata,
    }
)
CONFIRM = Spec(
    {"payment_method": string(255), "return_url": string(2048), "receipt_email": string(512)}
)
CAPTURE = Spec({"amount_to_capture": integer(1), "metadata": metadata})
CANCEL = Spec({"cancellation_reason": string(32, choices=CANCELLATION_REASONS)})
RETRIEVE = Spec({"client_secret": string(255)})
LIST = Spec({**LIST_FIELDS, "customer": string(255)})
THREE_D_SECURE = Spec(
    {"client_secret": string(255), "outcome": string(16, choices=("complete", "fail"))},
    required=frozenset({"client_secret", "outcome"}),
)


def payment_intent_object(row: PaymentIntentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "payment_intent",
        "amount": row.amount,
        "amount_capturable": row.amount_capturable,
        "amount_details": {"tip": {}},
        "amount_received": row.amount_received,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": unix(row.canceled_at),
        "cancellation_reason": row.cancellation_reason,
        "capture_method": row.capture_method,
        "client_secret": row.client_secret,
        "confirmation_method": row.confirmation_method,
        "created": unix(row.created),
        "currency": row.currency,
        "customer": row.customer_id,
        "description": row.description,
        "invoice": None,
        "last_payment_error": row.last_payment_error,
        "latest_charge": row.latest_charge,
        "livemode": False,
        "metadata": dict(row.metadata_),
        "next_action": row.next_action,
        "on_behalf_of": None,
        "payment_method": row.payment_method_id,
        "payment_method_options": {},
        "payment_method_types": list(row.payment_method_types),
        "processing": None,
        "receipt_email": row.receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": row.status,
        "transfer_data": None,
        "transfer_group": None,
    }
