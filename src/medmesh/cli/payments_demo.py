"""`medmesh up`'s demo payment: a customer tied to phi's demo patient, and a paid copay.

It goes through the gateway's Stripe-compatible API as any client would, with the admin token
`medmesh up` prints. What exists is left alone: the customer is found by its e-mail and the copay
by its customer, so running `medmesh up` again creates nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

#: The demo customer: the payer of phi's demo patient (FHIR R4's example Patient).
DEMO_EMAIL = "peter.chalmers@example.org"
DEMO_NAME = "Peter James Chalmers"
DEMO_PATIENT = "Patient/example"
#: The copay it paid: 25.00 US dollars with Stripe's test Visa card.
COPAY_AMOUNT = 2500
COPAY_CURRENCY = "usd"
COPAY_CARD = "pm_card_visa"


@dataclass(frozen=True)
class DemoPayment:
    """The demo customer and its copay, and whether this run made them."""

    customer: str
    payment_intent: str
    status: str
    created: bool

    def summary(self) -> str:
        state = "created now" if self.created else "already there"
        return (
            f"customer {self.customer} ({DEMO_NAME}), copay {self.payment_intent} "
            f"{COPAY_AMOUNT / 100:.2f} {COPAY_CURRENCY} {self.status} ({state})"
        )


def _answer(response: httpx.Response, expected: int = 200) -> dict[str, Any]:
    if response.status_code != expected:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {message}"
        )
    body: dict[str, Any] = response.json()
    return body


def seed_demo_payment(
    base_url: str, token: str, *, patient: str | None = DEMO_PATIENT
) -> DemoPayment:
    """Make the demo customer (tied to ``patient`` when given) and its paid copay at ``base_url``.

    Raises ``RuntimeError`` naming the request the gateway refused.
    """
    headers = {"Authorization": f"Bearer {token}"}
    created = False
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as http:
        found = _answer(http.get("/v1/customers", params={"email": DEMO_EMAIL, "limit": 1}))
        if found["data"]:
            customer = found["data"][0]
        else:
            form = {"email": DEMO_EMAIL, "name": DEMO_NAME, "description": "medmesh up demo"}
            if patient:
                form["metadata[patient]"] = patient
            customer = _answer(http.post("/v1/customers", data=form))
            created = True
        paid = _answer(
            http.get("/v1/payment_intents", params={"customer": customer["id"], "limit": 1})
        )
        if paid["data"]:
            intent = paid["data"][0]
        else:
            intent = _answer(
                http.post(
                    "/v1/payment_intents",
                    data={
                        "amount": str(COPAY_AMOUNT),
                        "currency": COPAY_CURRENCY,
                        "customer": customer["id"],
                        "payment_method": COPAY_CARD,
                        "description": "Copay (medmesh up demo)",
                        "confirm": "true",
                    },
                    headers={"Idempotency-Key": f"medmesh-up-copay-{customer['id']}"},
                )
            )
            created = True
    return DemoPayment(customer["id"], intent["id"], intent["status"], created)
