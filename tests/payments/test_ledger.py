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
    # Fees of the simulator: 2.9 % + 30 minor units (no fixed part in yen): 59 USD cents, 9 yen.
    assert {(b["account"], b["currency"], b["balance"]) for b in balances} == {
        ("patient_payments", "jpy", -300),
        ("processing_fees", "jpy", 9),
        ("processor_receivable", "jpy", 291),
        ("patient_payments", "usd", -1000),
        ("patient_refunds", "usd", 250),
        ("processing_fees", "usd", 59),
        ("processor_receivable", "usd", 691),
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
    assert (usd["fees"], usd["ledger_fees"]) == (59, 59)

    statement = await payments.get(f"/v1/customers/{customer['id']}/statement")
    # Newest first: the refund's two entries, then the capture's and its fee's.
    entries = [(e["kind"], e["account"], e["direction"], e["amount"]) for e in statement["data"]]
    assert set(entries[:2]) == {
        ("refund", "processor_receivable", "credit", 250),
        ("refund", "patient_refunds", "debit", 250),
    }
    assert set(entries[2:]) == {
        ("capture", "patient_payments", "credit", 1000),
        ("capture", "processor_receivable", "debit", 1000),
        ("fee", "processing_fees", "debit", 59),
        ("fee", "processor_receivable", "credit", 59),
    }
    assert len({e["transaction"] for e in statement["data"]}) == 3


async def test_the_ledger_needs_the_admin_scope(payments: PaymentsHarness) -> None:
    response = await payments.http.get("/v1/ledger/reconciliation", headers=payments.headers())
    assert response.status_code == 403
