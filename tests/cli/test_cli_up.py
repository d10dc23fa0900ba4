"""`medmesh up` (what `make run` runs): every registered service as a process, with demo data.

It runs for real here — the five services on free ports, a fresh var/ — twice, the second time
over the first one's data, as a developer runs `make run` again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from medmesh.cli import SERVICES
from medmesh.cli.payments_demo import DEMO_EMAIL
from tests.deploy.live_service import free_port

READY = "Ctrl-C stops everything."
SYNTHETIC = ("--synthetic-patients", "2")


@dataclass
class UpRun:
    """One `medmesh up`: the lines it printed until its services were ready and seeded."""

    lines: list[str]
    urls: dict[str, str]

    @property
    def token(self) -> str:
        return self.lines[self.lines.index("admin access token (15 min):") + 1]

    def line_starting(self, prefix: str) -> str:
        (line,) = [line for line in self.lines if line.startswith(prefix)]
        return line


@pytest.fixture
def up_env() -> tuple[dict[str, str], dict[str, str]]:
    # The children get the caller's PATH and HOME but none of its MEDMESH_* settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")}  # noqa: TID251
    urls = {}
    for name in SERVICES:
        port = free_port()
        env[f"MEDMESH_{name.upper()}_PORT"] = str(port)
        urls[name] = f"http://127.0.0.1:{port}"
    env["MEDMESH_LOG_LEVEL"] = "warning"
    return env, urls


@contextlib.contextmanager
def running_up(env: dict[str, str], urls: dict[str, str], var_dir: Path) -> Iterator[UpRun]:
    """`medmesh up` until it has seeded its demo data; then SIGTERM (as Ctrl-C would)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    output = var_dir / "up.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "medmesh.cli", "up", "--var-dir", str(var_dir), *SYNTHETIC],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while READY not in (printed := output.read_text().splitlines()):
            assert process.poll() is None, "medmesh up exited:\n" + "\n".join(printed)
            assert time.monotonic() < deadline, "\n".join(printed)
            time.sleep(0.5)
        yield UpRun(printed, urls)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert output.read_text().splitlines()[-1] == "stopped"


@pytest.mark.timeout(900)
def test_up_starts_every_service_and_seeds_a_payment_and_a_device_of_the_demo_patient(
    tmp_path: Path, up_env: tuple[dict[str, str], dict[str, str]]
) -> None:
    env, urls = up_env
    assert list(urls) == ["auth", "phi", "synthetic", "payments", "devices"]
    with running_up(env, urls, tmp_path / "var") as first:
        for name, url in urls.items():
            assert f"  {name:<10} {url}   docs {url}/docs   metrics {url}/metrics" in first.lines
        assert first.line_starting("client svc-payments: mmcs_")
        assert first.line_starting("synthetic: 2 patients loaded into phi")
        payments_api = f"payments API: {urls['payments']}/v1  (Stripe-compatible; the token is "
        assert first.line_starting(payments_api) == payments_api + "the API key)"
        seeded = first.line_starting("payments: customer cus_").split()
        customer, intent = seeded[2], seeded[7]
        assert (
            seeded
            == (
                f"payments: customer {customer} (Peter James Chalmers), copay {intent} "
                "25.00 usd succeeded (created now)"
            ).split()
        )
        assert intent.startswith("pi_")

        headers = {"Authorization": f"Bearer {first.token}"}
        with httpx.Client(base_url=urls["payments"], headers=headers, timeout=30) as gateway:
            found = gateway.get("/v1/customers", params={"email": DEMO_EMAIL}).json()
            assert [(c["id"], c["metadata"]) for c in found["data"]] == [
                (customer, {"patient": "Patient/example"})
            ]
            paid = gateway.get("/v1/payment_intents", params={"customer": customer}).json()
            assert [(p["id"], p["status"], p["amount_received"]) for p in paid["data"]] == [
                (intent, "succeeded", 2500)
            ]
            assert gateway.get("/v1/ledger/reconciliation").json()["balanced"] is True
        # The gateway records the copay in the patient's record in phi, with its own client.
        record = f"{urls['phi']}/fhir/PaymentReconciliation/pi-{intent.removeprefix('pi_')}"
        assert first.line_starting(f"     curl -s {record} ")
        deadline = time.monotonic() + 120
        while (found := httpx.get(record, headers=headers, timeout=30)).status_code == 404:
            assert time.monotonic() < deadline, "the copay never reached phi"
            time.sleep(0.5)
        assert found.status_code == 200, found.text
        assert found.json()["paymentAmount"] == {"value": 25.0, "currency": "USD"}

        # The demo device, assigned to the demo patient: the key shown once sends its readings.
        assert first.line_starting("client svc-devices: mmcs_")
        device = first.line_starting("devices: pulse oximeter ").split()[3]
        assert first.line_starting("devices: pulse oximeter ") == (
            f"devices: pulse oximeter {device} assigned to Patient/example (registered now)"
        )
        # It streamed ten minutes of simulated vitals, with a desaturation the default rule
        # turned into an alert that recovery resolved.
        assert first.line_starting("devices: simulated ") == (
            "devices: simulated 246 readings (246 stored) over the last 10 minutes; "
            "alerts: spo2 resolved"
        )
        key = first.line_starting("device key (shown once): ").split()[-1]
        reading = {"reading_id": "up-1", "metric": "spo2", "value": 97, "unit": "%"}
        sent = httpx.post(
            f"{urls['devices']}/v1/devices/{device}/readings",
            headers={"X-Device-Key": key},
            json={**reading, "timestamp": datetime.now(UTC).isoformat()},
            timeout=30,
        )
        assert [r["status"] for r in sent.json()["results"]] == ["stored"], sent.text
        search = f"{urls['phi']}/fhir/Observation?subject=Patient/example&code=59408-5"
        assert first.line_starting(f"     curl -s '{search}' ")
        # devices delivers it to phi as an Observation with its own client's default scopes,
        # beside the 60 SpO2 readings of the simulated stream.
        mine = f"{search}&identifier={device}:up-1"
        deadline = time.monotonic() + 120
        while not (observed := httpx.get(mine, headers=headers, timeout=30).json()).get("entry"):
            assert time.monotonic() < deadline, "the reading never reached phi"
            time.sleep(0.5)
        [entry] = observed["entry"]
        assert entry["resource"]["valueQuantity"]["value"] == 97
        deadline = time.monotonic() + 120
        while (
            httpx.get(search + "&_summary=count", headers=headers, timeout=30).json()["total"] < 61
        ):
            assert time.monotonic() < deadline, "the simulated SpO2 never reached phi"
            time.sleep(0.5)
        count = httpx.get(search + "&_summary=count", headers=headers, timeout=30).json()
        assert count["total"] == 61
        fhir_id = device.replace("_", "-")  # a FHIR id has no underscore
        assert entry["resource"]["device"] == {"reference": f"Device/{fhir_id}"}

    # `make run` again: the same data, nothing made twice, no new credentials shown.
    with running_up(env, urls, tmp_path / "var") as second:
        assert second.line_starting("payments: ") == (
            f"payments: customer {customer} (Peter James Chalmers), copay {intent} "
            "25.00 usd succeeded (already there)"
        )
        assert second.line_starting("synthetic: 0 patients loaded into phi")
        assert second.line_starting("devices: pulse oximeter ") == (
            f"devices: pulse oximeter {device} assigned to Patient/example (already there)"
        )
        # A new stream: new readings, stored.
        assert second.line_starting("devices: simulated 246 readings (246 stored) ")
        assert not [line for line in second.lines if line.startswith("device key")]
        assert not [line for line in second.lines if line.startswith("admin user:")]
