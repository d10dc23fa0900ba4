"""The official ``stripe`` library, its API base pointed at a real gateway server, drives the
whole flow with a medmesh access token as its API key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import stripe

from medmesh.platform.testing import serve_app
from tests.payments.conftest import AUDIENCE, PaymentsHarness


def _flow(base: str, token: str) -> dict[str, Any]:
    client = stripe.StripeClient(token, base_addresses={"api": base}, max_network_retries=2)
    customer = client.v1.customers.create(
        {"email": "jo@example.org", "metadata": {"patient": "Patient/p-7"}}
    )
    method = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "314"},
        }
    )
    client.v1.payment_methods.attach(method.id, {"customer": customer.id})
    intent = client.v1.payment_intents.create(
        {
            "amount": 2500,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": method.id,
            "capture_method": "manual",
            "metadata": {"invoice": "inv-9"},
        }
    )
    confirmed = client.v1.payment_intents.confirm(intent.id)
    captured = client.v1.payment_intents.capture(intent.id, {"amount_to_capture": 2000})
    refund = client.v1.refunds.create({"payment_intent": intent.id, "amount": 500})
    listed = client.v1.payment_intents.list({"customer": customer.id, "limit": 3})
    refunds = client.v1.refunds.list({"payment_intent": intent.id})
    try:
        client.v1.payment_intents.create(
            {
                "amount": 100,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
                "confirm": True,
            }
        )
        declined: stripe.CardError | None = None
    except stripe.CardError as error:
        declined = error
    try:
        client.v1.customers.retrieve("cus_missing")
        missing: stripe.InvalidRequestError | None = None
    except stripe.InvalidRequestError as error:
        missing = error
    return {
        "customer": customer,
        "method": method,
        "confirmed": confirmed,
        "captured": captured,
        "refund": refund,
        "listed": listed,
        "refunds": refunds,
        "declined": declined,
        "missing": missing,
    }


@pytest.mark.postgres
async def test_the_stripe_library_pays_and_refunds(payments: PaymentsHarness) -> None:
    token = payments.tokens.token("payments:write", audience=AUDIENCE)
    async with serve_app(payments.app) as base:
        seen = await asyncio.to_thread(_flow, base, token)
    assert seen["customer"].id.startswith("cus_")
    assert seen["method"].card.last4 == "4242"
    assert seen["confirmed"].status == "requires_capture"
    assert seen["captured"].status == "succeeded"
    assert seen["captured"].amount_received == 2000
    assert seen["refund"].amount == 500
    assert [i.id for i in seen["listed"].data] == [seen["captured"].id]
    assert [r.id for r in seen["refunds"].data] == [seen["refund"].id]
    declined = seen["declined"]
    assert declined is not None
    assert (declined.http_status, declined.code) == (402, "card_declined")
    assert declined.error.decline_code == "insufficient_funds"
    missing = seen["missing"]
    assert missing is not None
    assert (missing.http_status, missing.code) == (404, "resource_missing")
