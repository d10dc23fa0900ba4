"""Every object the gateway answers with validates against Stripe's published schema."""

from __future__ import annotations

import pytest

from tests.payments.conftest import PaymentsHarness
from tests.payments.stripe_schemas import list_errors, object_errors


@pytest.mark.postgres
async def test_objects_validate_against_stripe_schemas(payments: PaymentsHarness) -> None:
    customer = await payments.ok(
        "/v1/customers", {"email": "jo@example.org", "metadata[patient]": "Patient/p-1"}
    )
    assert object_errors("customer", customer) == []
    method = await payments.ok(
        "/v1/payment_methods",
        {
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "7",
            "card[exp_year]": "2031",
            "billing_details[name]": "Jo",
            "billing_details[address][postal_code]": "02139",
        },
    )
    assert object_errors("payment_method", method) == []
    await payments.ok(f"/v1/payment_methods/{method['id']}/attach", {"customer": customer["id"]})

    intents = [
        await payments.ok("/v1/payment_intents", {"amount": 900, "currency": "usd"}),
        await payments.paid_intent(customer=customer["id"], payment_method=method["id"]),
        await payments.paid_intent(capture_method="manual"),
        await payments.paid_intent(payment_method="pm_card_authenticationRequired"),
    ]
    assert [i["status"] for i in intents] == [
        "requires_payment_method",
        "succeeded",
        "requires_capture",
        "requires_action",
    ]
    canceled = await payments.ok(f"/v1/payment_intents/{intents[2]['id']}/cancel")
    for intent in [*intents, canceled]:
        assert object_errors("payment_intent", intent) == [], intent["status"]
    # The schemas do refuse what Stripe would not send.
    assert object_errors("payment_intent", {**canceled, "status": "paid"}) != []

    declined = await payments.post(
        "/v1/payment_intents",
        {
            "amount": 900,
            "currency": "usd",
            "payment_method": "pm_card_chargeDeclined",
            "confirm": "true",
        },
    )
    assert object_errors("error", declined.json()) == []
    failed = await payments.get(
        f"/v1/payment_intents/{declined.json()['error']['payment_intent']['id']}"
    )
    assert object_errors("payment_intent", failed) == []

    refund = await payments.ok("/v1/refunds", {"payment_intent": intents[1]["id"], "amount": 100})
    assert object_errors("refund", refund) == []

    for response in [
        await payments.post("/v1/refunds", {"payment_intent": intents[1]["id"], "amount": 99999}),
        await payments.post("/v1/customers", {"colour": "red"}),
        await payments.post(f"/v1/payment_intents/{canceled['id']}/capture"),
    ]:
        assert response.status_code == 400
        assert object_errors("error", response.json()) == []
    missing = await payments.http.get("/v1/customers/cus_nope", headers=payments.headers())
    assert object_errors("error", missing.json()) == []

    deleted = await payments.http.delete(
        f"/v1/customers/{customer['id']}", headers=payments.headers()
    )
    assert object_errors("deleted_customer", deleted.json()) == []

    assert list_errors("/v1/payment_intents", await payments.get("/v1/payment_intents")) == []
    assert list_errors("/v1/refunds", await payments.get("/v1/refunds")) == []
    assert list_errors("/v1/customers", await payments.get("/v1/customers")) == []
    assert list_errors("/v1/payment_methods", await payments.get("/v1/payment_methods")) == []
