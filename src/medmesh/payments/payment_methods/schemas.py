"""Parameters and the Stripe ``payment_method`` object (type ``card``)."""

from __future__ import annotations

from typing import Any

from medmesh.payments.models import PaymentMethodRow
from medmesh.payments.objects import unix
from medmesh.payments.params import LIST_FIELDS, Spec, integer, metadata, nested, string

_ADDRESS = Spec(
    {k: string(200) for k in ("city", "country", "line1", "line2", "postal_code", "state")}
)
BILLING = Spec(
    {"name": string(256), "email": string(512), "phone": string(64), "address": nested(_ADDRESS)}
)
CARD = Spec(
    {
        "number": string(32),
        "exp_month": integer(1, 12),
        "exp_year": integer(0, 9999),
        "cvc": string(8),
    },
    required=frozenset({"number", "exp_month", "exp_year"}),
)
CREATE = Spec(
    {
        "type": string(32, choices=("card",)),
        "card": nested(CARD),
        "billing_details": nested(BILLING),
        "metadata": metadata,
    },
    required=frozenset({"type"}),
)
UPDATE = Spec({"billing_details": nested(BILLING), "metadata": metadata})
ATTACH = Spec({"customer": string(255)}, required=frozenset({"customer"}))
DETACH = Spec({})
LIST = Spec({**LIST_FIELDS, "customer": string(255), "type": string(32, choices=("card",))})


def billing_details(given: dict[str, Any] | None) -> dict[str, Any]:
    given = given or {}
    address = given.get("address")
    return {
        "address": {
            k: (address or {}).get(k)
            for k in ("city", "country", "line1", "line2", "postal_code", "state")
        },
        "email": given.get("email"),
        "name": given.get("name"),
        "phone": given.get("phone"),
    }


def payment_method_object(row: PaymentMethodRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "payment_method",
        "billing_details": row.billing_details,
        "card": {
            "brand": row.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": row.country,
            "exp_month": row.exp_month,
            "exp_year": row.exp_year,
            "fingerprint": row.fingerprint,
            "funding": row.funding,
            "generated_from": None,
            "last4": row.last4,
            "networks": {"available": [row.brand], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": unix(row.created),
        "customer": row.customer_id,
        "livemode": False,
        "metadata": dict(row.metadata_),
        "type": row.type,
    }
