"""Real auth-, phi- and gateway processes: a patient's payment and refund are recorded in phi as
PaymentReconciliation resources, with the gateway's own token (svc-payments, client
credentials), exactly once — phi down while they happen, then up."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from medmesh.payments.migrations import upgrade
from medmesh.payments.patient_records.delivery import RecordRefused, phi_delivery
from medmesh.platform.outbox import OutboxMessage
from medmesh.platform.service_client import ServiceClient
from tests.e2e.test_phi_process import MEDMESH, _cli, _wait_ready, free_port

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    urls: dict[str, str]
    env: dict[str, dict[str, str]]
    processes: dict[str, subprocess.Popen[bytes]]
    secrets: dict[str, str]
    logs: Path

    def start(self, name: str) -> None:
        port = self.urls[name].rsplit(":", 1)[1]
        if name == "payments":
            command = [sys.executable, "-m", "uvicorn", "medmesh.payments.main:app"]
            command += ["--port", port]
        else:
            command = [*MEDMESH, "serve", name, "--port", port, "--migrate"]
        self.processes[name] = subprocess.Popen(
            command, env=self.env[name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_ready(self.urls[name], self.processes[name], self.logs / f"{name}.log")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def token(self, scope: str) -> str:
        issued = httpx.post(
            self.urls["auth"] + "/oauth/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=("demo-service", self.secrets["demo-service"]),
            timeout=30,
        )
        assert issued.status_code == 200, issued.text
        value: str = issued.json()["access_token"]
        return value


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    names = ("auth", "phi", "payments")
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in names}
    base = {
        k: v
        for k, v in os.environ.items()  # noqa: TID251 - the processes inherit PATH, HOME ...
        if not k.startswith("MEDMESH_")
    }

    def env_of(name: str, **extra: str) -> dict[str, str]:
        prefix = f"MEDMESH_{name.upper()}_"
        return {
            **base,
            prefix + "VAR_DIR": str(tmp_path),
            prefix + "ISSUER": urls["auth"],
            prefix + "DRAIN_SECONDS": "0",
            prefix + "LOG_FILE": str(tmp_path / f"{name}.log"),
            **{prefix + key: value for key, value in extra.items()},
        }

    env = {
        "auth": env_of("auth", ARGON2_MEMORY_KIB="1024", ARGON2_TIME_COST="1"),
        "phi": env_of("phi"),
    }
    stack = Stack(urls, env, {}, {}, tmp_path)
    try:
        stack.start("auth")
        boot = _cli(env["auth"], "admin", "bootstrap")
        assert boot.returncode == 0, boot.stderr
        stack.secrets = dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))
        stack.start("phi")
        database = f"sqlite+medmesh:///{tmp_path / 'payments.db'}"
        asyncio.run(upgrade(database))
        env["payments"] = env_of(
            "payments",
            DATABASE_URL=database,
            PHI_URL=urls["phi"],
            PHI_CLIENT_SECRET=stack.secrets["svc-payments"],
            WEBHOOK_POLL_SECONDS="0.05",
            WEBHOOK_BACKOFF_SECONDS="0.2",
            WEBHOOK_MAX_BACKOFF_SECONDS="0.5",
            WEBHOOK_TIMEOUT_SECONDS="2",
        )
        stack.start("payments")
        yield stack
    finally:
        for name in list(stack.processes)[::-1]:
            stack.stop(name)


def _records(fhir: httpx.Client) -> list[dict[str, Any]]:
    found = fhir.get("PaymentReconciliation", params={"_count": "50"})
    assert found.status_code == 200, found.text
    return [entry["resource"] for entry in found.json().get("entry", [])]


def _wait_for_records(fhir: httpx.Client, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while len(records := _records(fhir)) < count:
        assert time.monotonic() < deadline, f"{len(records)} of {count} records in phi"
        time.sleep(0.2)
    return records


def test_payments_are_recorded_in_phi_once_after_phi_comes_back(stack: Stack) -> None:
    phi_headers = {"Authorization": "Bearer " + stack.token("system/*.cruds")}
    pay_headers = {"Authorization": "Bearer " + stack.token("payments:write")}
    with (
        httpx.Client(base_url=stack.urls["phi"] + "/fhir", headers=phi_headers) as fhir,
        httpx.Client(base_url=stack.urls["payments"], headers=pay_headers) as gateway,
    ):
        patient = fhir.post("Patient", json={"resourceType": "Patient", "active": True})
        assert patient.status_code == 201, patient.text
        patient_ref = f"Patient/{patient.json()['id']}"
        customer = gateway.post("/v1/customers", data={"metadata[patient]": patient_ref})
        assert customer.status_code == 200, customer.text
        anonymous = gateway.post("/v1/customers", data={"email": "desk@example.org"})

        stack.stop("phi")
        pay = {"currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
        paid = gateway.post(
            "/v1/payment_intents", data={**pay, "amount": "2550", "customer": customer.json()["id"]}
        ).json()
        assert paid["status"] == "succeeded"
        other = gateway.post(
            "/v1/payment_intents",
            data={**pay, "amount": "900", "customer": anonymous.json()["id"]},
        ).json()
        assert other["status"] == "succeeded"
        refund = gateway.post("/v1/refunds", data={"payment_intent": paid["id"], "amount": "550"})
        assert refund.status_code == 200, refund.text
        time.sleep(1.5)  # deliveries fail meanwhile and are retried
        stack.start("phi")

        records = _wait_for_records(fhir, 2)
        time.sleep(1.5)  # a second copy of either would arrive by now
        records = _records(fhir)
        by_id = {record["id"]: record for record in records}
        assert sorted(by_id) == sorted(
            [paid["id"].replace("_", "-"), refund.json()["id"].replace("_", "-")]
        )
        assert len(records) == 2
        payment = by_id[paid["id"].replace("_", "-")]
        assert payment["meta"]["versionId"] == "1"
        assert payment["identifier"] == [
            {"system": "urn:medmesh:payments:payment_intent", "value": paid["id"]}
        ]
        assert payment["paymentAmount"] == {"value": 25.5, "currency": "USD"}
        assert payment["extension"][0]["valueReference"] == {"reference": patient_ref}
        assert payment["paymentIdentifier"]["value"] == paid["latest_charge"]
        refunded = by_id[refund.json()["id"].replace("_", "-")]
        assert refunded["paymentAmount"] == {"value": -5.5, "currency": "USD"}
        assert refunded["detail"][0]["predecessor"] == {
            "system": "urn:medmesh:payments:payment_intent",
            "value": paid["id"],
        }

        # A delivery repeated (its answer lost) finds the record and stores nothing.
        message = OutboxMessage(
            id="repeat",
            topic="payments.phi",
            destination=f"PaymentReconciliation/{payment['id']}",
            payload={k: v for k, v in payment.items() if k != "meta"},
            headers={},
        )
        asyncio.run(_deliver_again(stack, message))
        assert fhir.get(f"PaymentReconciliation/{payment['id']}").json()["meta"]["versionId"] == "1"
        assert len(_records(fhir)) == 2
        # A record deleted in phi is not made again.
        assert fhir.delete(f"PaymentReconciliation/{payment['id']}").status_code in (200, 204)
        asyncio.run(_deliver_again(stack, message))
        assert fhir.get(f"PaymentReconciliation/{payment['id']}").status_code == 410
        # phi refusing the write (a token without create) is a failure the outbox retries.
        new = OutboxMessage(
            id="refused",
            topic="payments.phi",
            destination="PaymentReconciliation/pi-refused",
            payload={**message.payload, "id": "pi-refused"},
            headers={},
        )
        with pytest.raises(RecordRefused) as refused:
            asyncio.run(_deliver_again(stack, new, "system/PaymentReconciliation.r"))
        assert refused.value.status == 403
        assert repr(refused.value) == "RecordRefused(status=403)"
        assert fhir.get("PaymentReconciliation/pi-refused").status_code == 404
    log = (stack.logs / "payments.log").read_text()
    assert "outbox_delivery_failed" in log
    assert "4242424242424242" not in log


async def _deliver_again(
    stack: Stack, message: OutboxMessage, scope: str = "system/PaymentReconciliation.cr"
) -> None:
    async with ServiceClient(
        stack.urls["phi"] + "/fhir",
        token_url=stack.urls["auth"] + "/oauth/token",
        client_id="svc-payments",
        client_secret=stack.secrets["svc-payments"],
        scope=scope,
    ) as phi:
        await phi_delivery(phi)(message)
