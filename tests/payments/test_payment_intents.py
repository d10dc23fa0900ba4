from __future__ import annotations

from typing import Any

import pytest

from tests.payments.conftest import PaymentsHarness


async def intent(payments: PaymentsHarness, **data: Any) -> dict[str, Any]:
    found: dict[str, Any] = await payments.ok(
        "/v1/payment_intents", {"amount": 2000, "currency": "usd", **data}
    )
    return found


@pytest.mark.postgres
async def test_automatic_capture(payments: PaymentsHarness) -> None:
    created = await intent(payments)
    assert created["id"].startswith("pi_")
    assert created["status"] == "requires_payment_method"
    assert created["client_secret"].startswith(created["id"] + "_secret_")
    with_method = await payments.ok(
        f"/v1/payment_intents/{created['id']}", {"payment_method": "pm_card_visa"}
    )
    assert with_method["status"] == "requires_confirmation"
    confirmed = await payments.ok(f"/v1/payment_intents/{created['id']}/confirm")
    assert confirmed["status"] == "succeeded"
    assert confirmed["amount_received"] == 2000
    assert confirmed["latest_charge"].startswith("ch_")
    assert await payments.get(f"/v1/payment_intents/{created['id']}") == confirmed


@pytest.mark.postgres
async def test_manual_capture_partial(payments: PaymentsHarness) -> None:
    created = await intent(
        payments, payment_method="pm_card_visa", capture_method="manual", confirm="true"
    )
    assert created["status"] == "requires_capture"
    assert created["amount_capturable"] == 2000
    assert created["amount_received"] == 0
    too_much = await payments.post(
        f"/v1/payment_intents/{created['id']}/capture", {"amount_to_capture": 2001}
    )
    assert too_much.status_code == 400
    captured = await payments.ok(
        f"/v1/payment_intents/{created['id']}/capture", {"amount_to_capture": 1500}
    )
    assert (captured["status"], captured["amount_received"], captured["amount_capturable"]) == (
        "succeeded",
        1500,
        0,
    )


@pytest.mark.postgres
async def test_capturing_a_canceled_intent_changes_nothing(payments: PaymentsHarness) -> None:
    created = await intent(
        payments, payment_method="pm_card_visa", capture_method="manual", confirm="true"
    )
    canceled = await payments.ok(
        f"/v1/payment_intents/{created['id']}/cancel",
        {"cancellation_reason": "requested_by_customer"},
    )
    assert canceled["status"] == "canceled"
    assert isinstance(canceled["canceled_at"], int)
    refused = await payments.post(f"/v1/payment_intents/{created['id']}/capture")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "payment_intent_unexpected_state"
    assert error["payment_intent"]["status"] == "canceled"
    assert await payments.get(f"/v1/payment_intents/{created['id']}") == canceled
    assert await payments.count("ledger_entries") == 0


async def test_a_succeeded_intent_cannot_be_canceled(payments: PaymentsHarness) -> None:
    paid = await payments.paid_intent()
    refused = await payments.post(f"/v1/payment_intents/{paid['id']}/cancel")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "payment_intent_unexpected_state"


DECLINES = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
]


@pytest.mark.parametrize(("method", "code", "decline_code"), DECLINES)
async def test_test_cards_decline_as_stripe_documents(
    payments: PaymentsHarness, method: str, code: str, decline_code: str
) -> None:
    response = await payments.post(
        "/v1/payment_intents",
        {"amount": 500, "currency": "usd", "payment_method": method, "confirm": "true"},
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        code,
        decline_code,
    )
    stored = await payments.get(f"/v1/payment_intents/{error['payment_intent']['id']}")
    assert stored["status"] == "requires_payment_method"
    assert stored["last_payment_error"]["code"] == code
    assert stored["payment_method"] is None
    assert await payments.count("charges") == 0
    retried = await payments.ok(
        f"/v1/payment_intents/{stored['id']}/confirm", {"payment_method": "pm_card_visa"}
    )
    assert retried["status"] == "succeeded"
    assert retried["last_payment_error"] is None


@pytest.mark.postgres
async def test_three_d_secure(payments: PaymentsHarness) -> None:
    created = await intent(
        payments, payment_method="pm_card_authenticationRequired", confirm="true"
    )
    assert created["status"] == "requires_action"
    url = created["next_action"]["redirect_to_url"]["url"]
    assert created["next_action"]["type"] == "redirect_to_url"
    wrong = await payments.http.post(url, data={"client_secret": "x", "outcome": "complete"})
    assert wrong.status_code == 404
    # A secret that is not ASCII is a wrong secret too (not a 500).
    accented = await payments.http.post(url, data={"client_secret": "é" * 8, "outcome": "complete"})
    assert accented.status_code == 404
    assert accented.json() == wrong.json()
    done = await payments.http.post(
        url, data={"client_secret": created["client_secret"], "outcome": "complete"}
    )
    assert done.status_code == 200
    assert done.json()["status"] == "succeeded"

    failing = await intent(
        payments, payment_method="pm_card_authenticationRequired", confirm="true"
    )
    failed = await payments.http.post(
        failing["next_action"]["redirect_to_url"]["url"],
        data={"client_secret": failing["client_secret"], "outcome": "fail"},
    )
    assert failed.status_code == 402
    assert failed.json()["error"]["code"] == "payment_intent_authentication_failure"
    stored = await payments.get(f"/v1/payment_intents/{failing['id']}")
    assert stored["status"] == "requires_payment_method"


async def test_zero_decimal_and_three_decimal_currencies(payments: PaymentsHarness) -> None:
    yen = await payments.paid_intent(amount=500, currency="jpy")
    assert (yen["amount_received"], yen["currency"]) == (500, "jpy")
    dinar = await payments.post("/v1/payment_intents", {"amount": 1005, "currency": "kwd"})
    assert dinar.status_code == 400
    assert dinar.json()["error"]["param"] == "amount"
    assert (await payments.ok("/v1/payment_intents", {"amount": 1000, "currency": "KWD"}))[
        "currency"
    ] == "kwd"


@pytest.mark.parametrize(
    ("data", "code", "param"),
    [
        ({"amount": "0", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": "-5", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": "ten", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": "100", "currency": "xyz"}, "parameter_invalid", "currency"),
        ({"amount": "100"}, "parameter_missing", "currency"),
        ({"amount": "100", "currency": "usd", "colour": "red"}, "parameter_unknown", "colour"),
        (
            {"amount": "100", "currency": "usd", "capture_method": "later"},
            "parameter_invalid",
            "capture_method",
        ),
    ],
)
async def test_bad_input_gets_stripe_errors_and_changes_nothing(
    payments: PaymentsHarness, data: dict[str, str], code: str, param: str
) -> None:
    response = await payments.post("/v1/payment_intents", data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert await payments.count("payment_intents") == 0


async def test_json_bodies_work_like_forms(payments: PaymentsHarness) -> None:
    response = await payments.http.post(
        "/v1/payment_intents",
        json={"amount": 700, "currency": "eur", "metadata": {"invoice": "inv-1"}},
        headers=payments.headers(),
    )
    assert response.status_code == 200
    assert response.json()["metadata"] == {"invoice": "inv-1"}
    assert response.json()["amount"] == 700


@pytest.mark.postgres
async def test_list_by_customer(payments: PaymentsHarness) -> None:
    customer = await payments.ok("/v1/customers", {"name": "A"})
    mine = await intent(payments, customer=customer["id"])
    await intent(payments)
    listed = await payments.get("/v1/payment_intents", customer=customer["id"])
    assert [i["id"] for i in listed["data"]] == [mine["id"]]
    assert len((await payments.get("/v1/payment_intents"))["data"]) == 2
