from __future__ import annotations

import pytest

from tests.payments.conftest import PaymentsHarness

CARD = {
    "type": "card",
    "card[number]": "4242424242424242",
    "card[exp_month]": "12",
    "card[exp_year]": "2034",
    "card[cvc]": "123",
}


def _values(node: object) -> list[object]:
    """Every scalar of a JSON document."""
    if isinstance(node, dict):
        return [v for child in node.values() for v in _values(child)]
    if isinstance(node, list):
        return [v for child in node for v in _values(child)]
    return [node]


@pytest.mark.postgres
async def test_a_card_is_tokenized_and_its_number_never_returned(
    payments: PaymentsHarness,
) -> None:
    response = await payments.post("/v1/payment_methods", CARD)
    assert response.status_code == 200
    assert "4242424242424242" not in response.text
    method = response.json()
    # The CVC is no value of the answer (ids and timestamps may contain the digits by chance).
    assert "123" not in _values(method)
    assert 123 not in _values(method)
    assert "cvc" not in method["card"]
    assert method["id"].startswith("pm_")
    card = method["card"]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa",
        "4242",
        12,
        2034,
    )
    again = await payments.ok("/v1/payment_methods", CARD)
    assert again["card"]["fingerprint"] == card["fingerprint"]
    other = await payments.ok("/v1/payment_methods", {**CARD, "card[number]": "5555555555554444"})
    assert other["card"]["brand"] == "mastercard"
    assert other["card"]["fingerprint"] != card["fingerprint"]
    assert await payments.get(f"/v1/payment_methods/{method['id']}") == method


async def test_a_luhn_invalid_number_is_incorrect_number(payments: PaymentsHarness) -> None:
    response = await payments.post(
        "/v1/payment_methods", {**CARD, "card[number]": "4242424242424241"}
    )
    assert response.status_code == 402
    assert response.json() == {
        "error": {
            "type": "card_error",
            "code": "incorrect_number",
            "message": "Your card number is incorrect.",
            "param": "card[number]",
        }
    }
    assert await payments.count("payment_methods") == 0


async def test_an_expired_date_is_refused(payments: PaymentsHarness) -> None:
    response = await payments.post("/v1/payment_methods", {**CARD, "card[exp_year]": "2001"})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "invalid_expiry_year"


async def test_missing_card_details(payments: PaymentsHarness) -> None:
    response = await payments.post("/v1/payment_methods", {"type": "card", "card[number]": "1"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_missing"
    assert response.json()["error"]["param"] == "card[exp_month]"


@pytest.mark.postgres
async def test_attach_detach_and_list_by_customer(payments: PaymentsHarness) -> None:
    customer = await payments.ok("/v1/customers", {"name": "A"})
    method = await payments.ok("/v1/payment_methods", CARD)
    attached = await payments.ok(
        f"/v1/payment_methods/{method['id']}/attach", {"customer": customer["id"]}
    )
    assert attached["customer"] == customer["id"]
    listed = await payments.get("/v1/payment_methods", customer=customer["id"], type="card")
    assert [m["id"] for m in listed["data"]] == [method["id"]]
    other = await payments.ok("/v1/customers", {"name": "B"})
    taken = await payments.post(
        f"/v1/payment_methods/{method['id']}/attach", {"customer": other["id"]}
    )
    assert taken.status_code == 400
    detached = await payments.ok(f"/v1/payment_methods/{method['id']}/detach")
    assert detached["customer"] is None
    assert (await payments.get("/v1/payment_methods", customer=customer["id"]))["data"] == []


async def test_a_stripe_test_id_makes_a_payment_method(payments: PaymentsHarness) -> None:
    customer = await payments.ok("/v1/customers", {"name": "A"})
    attached = await payments.ok(
        "/v1/payment_methods/pm_card_mastercard/attach", {"customer": customer["id"]}
    )
    assert attached["id"].startswith("pm_")
    assert attached["id"] != "pm_card_mastercard"
    assert attached["card"]["brand"] == "mastercard"
    assert attached["card"]["last4"] == "4444"
