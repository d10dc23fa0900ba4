from __future__ import annotations

import pytest

from tests.payments.conftest import PaymentsHarness
from tests.payments.stripe_schemas import object_errors


@pytest.mark.postgres
async def test_each_change_is_an_event(payments: PaymentsHarness) -> None:
    held = await payments.paid_intent(capture_method="manual")
    await payments.ok(f"/v1/payment_intents/{held['id']}/capture")
    events = await payments.get("/v1/events", type="payment_intent.succeeded")
    assert [e["data"]["object"]["id"] for e in events["data"]] == [held["id"]]
    event = events["data"][0]
    assert event["id"].startswith("evt_")
    assert event["data"]["object"]["status"] == "succeeded"
    assert object_errors("event", event) == []
    assert await payments.get(f"/v1/events/{event['id']}") == event
    kinds = [e["type"] for e in (await payments.get("/v1/events"))["data"]]
    assert kinds == [
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
        "payment_intent.created",
    ]
    patient = payments.headers("payments:read", patient="p-1")
    assert (await payments.http.get("/v1/events", headers=patient)).status_code == 403


@pytest.mark.postgres
async def test_expand(payments: PaymentsHarness) -> None:
    customer = await payments.ok("/v1/customers", {"name": "A"})
    paid = await payments.paid_intent(2000, customer=customer["id"], **{"expand[]": "customer"})
    assert paid["customer"] == customer
    found = await payments.get(
        f"/v1/payment_intents/{paid['id']}", **{"expand[0]": "payment_method"}
    )
    assert found["payment_method"]["object"] == "payment_method"
    assert found["customer"] == customer["id"]
    # The payment method a test id makes is created by the payment itself, and expands too.
    fresh = await payments.paid_intent(
        300, customer=customer["id"], **{"expand[0]": "payment_method", "expand[1]": "customer"}
    )
    assert fresh["payment_method"]["id"].startswith("pm_")
    assert fresh["payment_method"]["card"]["last4"] == "4242"
    assert fresh["customer"] == customer
    stored = await payments.get(
        f"/v1/payment_intents/{fresh['id']}", **{"expand[]": "payment_method"}
    )
    assert stored["payment_method"] == fresh["payment_method"]
    listed = await payments.get("/v1/payment_intents", **{"expand[]": "data.customer"})
    assert listed["data"][0]["customer"] == customer
    refused = await payments.http.get(
        f"/v1/payment_intents/{paid['id']}",
        params={"expand[]": "latest_charge"},
        headers=payments.headers(),
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "This property cannot be expanded (latest_charge)."
    before = await payments.count("payment_intents")
    response = await payments.post(
        "/v1/payment_intents",
        {"amount": 100, "currency": "usd", "expand[]": "nonsense"},
        **{"Idempotency-Key": "x-1"},
    )
    assert response.status_code == 400
    assert await payments.count("payment_intents") == before
