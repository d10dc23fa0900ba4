"""`medmesh up`'s demo data against a real gateway process: what it makes, and what it says when
a service refuses or cannot be reached (it goes on; `medmesh up` keeps running)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from medmesh.cli.demo_data import seed_demo_data
from medmesh.cli.devices_demo import (
    DEMO_SERIAL,
    DemoDevice,
    seed_demo_device,
    stream_demo_vitals,
)
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


@pytest.fixture(scope="module")
def devices_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_service("devices", tmp_path_factory.mktemp("devices")) as url:
        yield url


def devices_token(scope: str = "devices:write") -> str:
    return tokens().token(scope, audience="medmesh-devices")


def test_the_demo_device_is_registered_once_and_assigned_once_phi_runs(
    devices_service: str,
) -> None:
    first = seed_demo_device(devices_service, devices_token(), patient=None)
    assert (first.patient, first.created) == (None, True)
    assert first.key is not None
    assert first.summary() == f"pulse oximeter {first.id} assigned to no patient (registered now)"
    # A later run with phi: the same device, now assigned; its key is not shown again.
    later = seed_demo_device(devices_service, devices_token())
    assert later == DemoDevice(first.id, "Patient/example", None, False)
    assert (
        later.summary() == f"pulse oximeter {first.id} assigned to Patient/example (already there)"
    )
    assert seed_demo_device(devices_service, devices_token()) == later

    with httpx.Client(base_url=devices_service, timeout=30) as http:
        headers = {"Authorization": f"Bearer {devices_token()}"}
        listed = http.get("/v1/devices", headers=headers).json()["data"]
        assert [(d["id"], d["serial_number"]) for d in listed] == [(first.id, DEMO_SERIAL)]
        assignments = http.get(f"/v1/devices/{first.id}/assignments", headers=headers).json()
        assert [(a["patient"], a["end"]) for a in assignments["data"]] == [
            ("Patient/example", None)
        ]
        # The key shown once lets the device send its readings.
        reading = {"reading_id": "r-1", "metric": "spo2", "value": 97, "unit": "%"}
        sent = http.post(
            f"/v1/devices/{first.id}/readings",
            headers={"X-Device-Key": first.key},
            json={**reading, "timestamp": datetime.now(UTC).isoformat()},
        )
        assert sent.status_code == 200, sent.text
        assert [r["status"] for r in sent.json()["results"]] == ["stored"]


def test_a_refused_registry_request_is_named_with_the_services_message(
    devices_service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError) as refused:
        seed_demo_device(devices_service, devices_token("devices:ingest"))
    assert str(refused.value).startswith("GET /v1/devices: 403 ")
    seed_demo_data({"devices": devices_service}, "not-a-token", synthetic_patients=0)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "devices" in line]
    assert line.startswith("devices: demo device not registered (GET /v1/devices: 401 ")


@pytest.fixture(scope="module")
def streaming_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A devices service of its own (the stream's readings must be the device's latest)."""
    with running_service("devices", tmp_path_factory.mktemp("streaming")) as url:
        yield url


def test_the_demo_device_streams_vitals_that_raise_and_resolve_a_low_spo2_alert(
    streaming_service: str,
) -> None:
    scope = "devices:read devices:write"
    url = streaming_service
    demo = seed_demo_device(url, devices_token(scope), patient="Patient/example")
    first = stream_demo_vitals(url, devices_token(scope), demo.id)
    assert (first.sent, first.stored) == (246, 246)
    assert [(a["metric"], a["status"], a["rule_id"]) for a in first.alerts] == [
        ("spo2", "resolved", "rule_default_low_spo2")
    ]
    assert first.summary() == (
        "simulated 246 readings (246 stored) over the last 10 minutes; alerts: spo2 resolved"
    )
    # Another run sends new readings (its reading ids are its own).
    again = stream_demo_vitals(url, devices_token(scope), demo.id)
    assert (again.sent, again.stored) == (246, 246)
    # Each run's key was revoked after it; the device's own key is untouched.
    headers = {"Authorization": f"Bearer {devices_token(scope)}"}
    keys = httpx.get(f"{url}/v1/devices/{demo.id}/keys", headers=headers, timeout=30).json()
    assert [k["revoked"] is None for k in keys["data"]] == [True, False, False]
