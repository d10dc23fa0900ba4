"""`medmesh up`'s demo data against a real gateway process: what it makes, and what it says when
a service refuses or cannot be reached (it goes on; `medmesh up` keeps running)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from medmesh.cli.demo_data import seed_demo_data
from medmesh.cli.payments_demo import DEMO_EMAIL, seed_demo_payment
from tests.deploy.live_service import free_port, running_service, tokens


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_service("payments", tmp_path_factory.mktemp("payments")) as url:
        yield url


def token(scope: str = "payments:write") -> str:
    return tokens().token(scope, audience="medmesh-payments")


def test_without_phi_the_customer_names_no_patient_and_a_second_run_makes_nothing(
    gateway: str,
) -> None:
    first = seed_demo_payment(gateway, token(), patient=None)
    assert (first.status, first.created) == ("succeeded", True)
    again = seed_demo_payment(gateway, token(), patient=None)
    assert again == type(first)(first.customer, first.payment_intent, "succeeded", False)
    assert again.summary() == (
        f"customer {first.customer} (Peter James Chalmers), copay {first.payment_intent} "
        "25.00 usd succeeded (already there)"
    )
    headers = {"Authorization": f"Bearer {token()}"}
    found = httpx.get(
        f"{gateway}/v1/customers", params={"email": DEMO_EMAIL}, headers=headers, timeout=30
    ).json()
    assert [(c["id"], c["metadata"]) for c in found["data"]] == [(first.customer, {})]


def test_a_refused_request_is_named_with_the_gateways_message(gateway: str) -> None:
    with pytest.raises(RuntimeError) as refused:
        seed_demo_payment(gateway, token("openid"))
    assert str(refused.value) == (
        "GET /v1/customers: 403 this request needs the scopes payments:read payments:write "
        "payments:admin (any one)"
    )
    # An answer that is no Stripe error object is quoted as it came.
    with pytest.raises(RuntimeError) as elsewhere:
        seed_demo_payment(f"{gateway}/elsewhere", token())
    assert str(elsewhere.value).startswith("GET /elsewhere/v1/customers: 404 {")


def test_a_service_that_refuses_or_is_down_is_reported_and_the_rest_goes_on(
    gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    seed_demo_data(
        {"phi": nowhere, "synthetic": nowhere, "payments": gateway},
        "not-a-token",
        synthetic_patients=2,
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines if "not" in line] == [
        "phi: demo data not loaded",
        "synthetic: patients not loaded",
        "payments: demo payment not made",
    ]
    (payments,) = [line for line in lines if line.startswith("payments: ")]
    assert payments.startswith("payments: demo payment not made (GET /v1/customers: 401 ")


def test_no_synthetic_patients_asked_for_loads_none(capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    seed_demo_data({"synthetic": nowhere, "phi": nowhere}, "t", synthetic_patients=0)
    assert "synthetic" not in capsys.readouterr().out
