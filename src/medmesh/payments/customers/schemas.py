"""Parameters and the Stripe ``customer`` object."""

from __future__ import annotations

from typing import Any

from medmesh.payments.models import CustomerRow
from medmesh.payments.objects import unix
from medmesh.payments.params import LIST_FIELDS, Spec, metadata, string

_FIELDS = {
    "email": string(512),
    "name": string(256),
    "phone": string(64),
    "description": string(1000),
    "metadata": metadata,
}
CREATE = Spec(_FIELDS)
UPDATE = Spec(_FIELDS)
LIST = Spec({**LIST_FIELDS, "email": string(512)})
#: The metadata key that names the customer's FHIR Patient.
PATIENT_KEY = "patient"


def customer_object(row: CustomerRow) -> dict[str, Any]:
    if row.deleted:
        return {"id": row.id, "object": "customer", "deleted": True}
    return {
        "id": row.id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": unix(row.created),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": row.description,
        "discount": None,
        "email": row.email,
        "invoice_prefix": None,
        "livemode": False,
        "metadata": dict(row.metadata_),
        "name": row.name,
        "phone": row.phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
