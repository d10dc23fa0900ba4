from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.payments.conftest import PaymentsHarness

PAY = {"amount": "1500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


@pytest.mark.postgres
async def test_the_first_response_is_replayed(payments: PaymentsHarness) -> None:
    first = await payments.post("/v1/payment_intents", PAY, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 200
    assert "idempotent-replayed" not in first.headers
    again = await payments.post("/v1/payment_intents", PAY, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await payments.count("payment_intents") == 1
    assert await payments.count("charges") == 1


async def test_a_stored_card_error_is_replayed_too(payments: PaymentsHarness) -> None:
    declined = {**PAY, "payment_method": "pm_card_chargeDeclined"}
    first = await payments.post("/v1/payment_intents", declined, **{"Idempotency-Key": "k-2"})
    assert first.status_code == 402
    again = await payments.post("/v1/payment_intents", declined, **{"Idempotency-Key": "k-2"})
    assert (again.status_code, again.json()) == (402, first.json())
    assert await payments.count("payment_intents") == 1


async def test_other_parameters_with_the_key_are_an_idempotency_error(
    payments: PaymentsHarness,
) -> None:
    await payments.ok("/v1/payment_intents", PAY, **{"Idempotency-Key": "k-3"})
    other = await payments.post(
        "/v1/payment_intents", {**PAY, "amount": "1600"}, **{"Idempotency-Key": "k-3"}
    )
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    elsewhere = await payments.post("/v1/customers", {}, **{"Idempotency-Key": "k-3"})
    assert elsewhere.status_code == 400
    assert await payments.count("payment_intents") == 1
    assert await payments.count("customers") == 0


async def test_a_request_that_fails_its_checks_stores_nothing(payments: PaymentsHarness) -> None:
    bad = await payments.post(
        "/v1/payment_intents", {**PAY, "amount": "0"}, **{"Idempotency-Key": "k-4"}
    )
    assert bad.status_code == 400
    fixed = await payments.post("/v1/payment_intents", PAY, **{"Idempotency-Key": "k-4"})
    assert fixed.status_code == 200
    missing = await payments.post(
        "/v1/payment_intents/pi_nope/confirm", {}, **{"Idempotency-Key": "k-5"}
    )
    assert missing.status_code == 404
    assert await payments.count("idempotency_keys") == 1


async def test_keys_belong_to_their_caller(payments: PaymentsHarness) -> None:
    alice = payments.headers(sub="alice", client_id="clinic-a")
    bob = payments.headers(sub="bob", client_id="clinic-b")
    key = {"Idempotency-Key": "same"}
    one = await payments.http.post("/v1/customers", data={"name": "A"}, headers={**alice, **key})
    two = await payments.http.post("/v1/customers", data={"name": "B"}, headers={**bob, **key})
    assert one.status_code == two.status_code == 200
    assert one.json()["id"] != two.json()["id"]


async def test_an_overlong_key_is_refused(payments: PaymentsHarness) -> None:
    response = await payments.post("/v1/customers", {}, **{"Idempotency-Key": "k" * 256})
    assert response.status_code == 400
    assert await payments.count("customers") == 0


@pytest.mark.postgres
async def test_twenty_concurrent_requests_with_one_key_charge_once(
    payments: PaymentsHarness,
) -> None:
    responses = await asyncio.gather(
        *(
            payments.post("/v1/payment_intents", PAY, **{"Idempotency-Key": "race"})
            for _ in range(20)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}
    assert statuses[200] >= 1
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert len({r.json()["id"] for r in responses if r.status_code == 200}) == 1
    assert await payments.count("payment_intents") == 1
    assert await payments.count("charges") == 1
    assert await payments.count("ledger_entries", "kind = 'capture'") == 2
    after = await payments.post("/v1/payment_intents", PAY, **{"Idempotency-Key": "race"})
    assert after.headers["idempotent-replayed"] == "true"


@pytest.mark.postgres
async def test_twenty_concurrent_captures_one_succeeds(payments: PaymentsHarness) -> None:
    held = await payments.paid_intent(capture_method="manual")
    assert held["status"] == "requires_capture"
    responses = await asyncio.gather(
        *(payments.post(f"/v1/payment_intents/{held['id']}/capture") for _ in range(20))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 400: 19}
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "payment_intent_unexpected_state"
    assert await payments.count("ledger_entries", "kind = 'capture'") == 2


@pytest.mark.postgres
async def test_racing_refunds_never_exceed_the_captured_amount(
    payments: PaymentsHarness,
) -> None:
    paid = await payments.paid_intent(amount=1000)
    responses = await asyncio.gather(
        *(
            payments.post("/v1/refunds", {"payment_intent": paid["id"], "amount": 300})
            for _ in range(10)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 3, 400: 7}
    assert await payments.count("refunds") == 3
    admin = payments.headers("payments:admin")
    report = (await payments.http.get("/v1/ledger/reconciliation", headers=admin)).json()
    assert report["balanced"] is True
    assert report["currencies"][0]["refunded"] == 900
