from __future__ import annotations

import pytest

from tests.payments.conftest import PaymentsHarness


@pytest.mark.postgres
async def test_partial_refunds_up_to_the_captured_amount(payments: PaymentsHarness) -> None:
    paid = await payments.paid_intent(amount=1000)
    first = await payments.ok("/v1/refunds", {"payment_intent": paid["id"], "amount": 400})
    assert first["id"].startswith("re_")
    assert (first["amount"], first["status"], first["charge"]) == (
        400,
        "succeeded",
        paid["latest_charge"],
    )
    too_much = await payments.post("/v1/refunds", {"payment_intent": paid["id"], "amount": 601})
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "amount_too_large"
    rest = await payments.ok("/v1/refunds", {"payment_intent": paid["id"]})
    assert rest["amount"] == 600
    again = await payments.post("/v1/refunds", {"payment_intent": paid["id"]})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "charge_already_refunded"
    listed = await payments.get("/v1/refunds", payment_intent=paid["id"])
    assert [r["id"] for r in listed["data"]] == [rest["id"], first["id"]]
    assert await payments.get(f"/v1/refunds/{first['id']}") == first


async def test_a_refund_by_charge(payments: PaymentsHarness) -> None:
    paid = await payments.paid_intent(amount=1000)
    refund = await payments.ok("/v1/refunds", {"charge": paid["latest_charge"], "amount": 10})
    assert refund["payment_intent"] == paid["id"]


async def test_only_succeeded_payments_are_refunded(payments: PaymentsHarness) -> None:
    created = await payments.ok("/v1/payment_intents", {"amount": 1000, "currency": "usd"})
    refused = await payments.post("/v1/refunds", {"payment_intent": created["id"]})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "charge_not_refundable"
    missing = await payments.post("/v1/refunds", {"amount": 5})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "parameter_missing"
    assert await payments.count("refunds") == 0
