from __future__ import annotations

import pytest

from tests.payments.conftest import ADMIN, PaymentsHarness


@pytest.mark.postgres
async def test_captures_and_refunds_are_balanced_entries(payments: PaymentsHarness) -> None:
    customer = await payments.ok("/v1/customers", {"name": "A"})
    paid = await payments.paid_intent(amount=1000, customer=customer["id"])
    await payments.paid_intent(amount=300, currency="jpy")
    await payments.ok("/v1/refunds", {"payment_intent": paid["id"], "amount": 250})

    admin = payments.headers(ADMIN)
    balances = (await payments.http.get("/v1/ledger/balances", headers=admin)).json()["data"]
    assert {(b["account"], b["currency"], b["balance"]) for b in balances} == {
        ("patient_payments", "jpy", -300),
        ("processor_receivable", "jpy", 300),
        ("patient_payments", "usd", -1000),
        ("patient_refunds", "usd", 250),
        ("processor_receivable", "usd", 750),
    }
    report = (await payments.http.get("/v1/ledger/reconciliation", headers=admin)).json()
    assert report["balanced"] is True
    usd = next(c for c in report["currencies"] if c["currency"] == "usd")
    assert (usd["captured"], usd["ledger_captured"], usd["refunded"], usd["ledger_refunded"]) == (
        1000,
        1000,
        250,
        250,
    )

    statement = await payments.get(f"/v1/customers/{customer['id']}/statement")
    # Newest first: the refund's two entries, then the capture's (within one, in any order).
    entries = [(e["kind"], e["account"], e["direction"], e["amount"]) for e in statement["data"]]
    assert set(entries[:2]) == {
        ("refund", "processor_receivable", "credit", 250),
        ("refund", "patient_refunds", "debit", 250),
    }
    assert set(entries[2:]) == {
        ("capture", "patient_payments", "credit", 1000),
        ("capture", "processor_receivable", "debit", 1000),
    }
    assert len({e["transaction"] for e in statement["data"]}) == 2


async def test_the_ledger_needs_the_admin_scope(payments: PaymentsHarness) -> None:
    response = await payments.http.get("/v1/ledger/reconciliation", headers=payments.headers())
    assert response.status_code == 403
