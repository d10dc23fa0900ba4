"""A real gateway process killed with SIGKILL after a payment changed and before its webhook
was delivered: once it runs again, the webhook is delivered, exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import stripe

from medmesh.payments.migrations import upgrade
from medmesh.platform.testing import serve_app
from medmesh.platform.tokens import SigningKey
from tests.e2e.test_phi_process import free_port
from tests.payments.test_webhooks import Receiver

pytestmark = [pytest.mark.e2e]
SECRET = "payments-process-test-shared-secret-0123456789"


def _token() -> str:
    now = int(time.time())
    claims = {
        "iss": "http://auth.test",
        "sub": "billing-desk",
        "aud": ["medmesh-payments"],
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": f"jti-{now}",
        "scope": "payments:write",
        "client_id": "billing-desk",
        "roles": ["billing"],
    }
    return SigningKey.hs256(SECRET).sign(claims)


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "medmesh.payments.main:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            assert process.poll() is None, "the gateway exited"
            try:
                if (await client.get(url + "/readyz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gateway did not become ready"
            await asyncio.sleep(0.1)


async def test_a_webhook_survives_sigkill(tmp_path: Path) -> None:
    database = f"sqlite+medmesh:///{tmp_path / 'payments.db'}"
    await upgrade(database)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")},  # noqa: TID251 - PATH, HOME ...
        "MEDMESH_PAYMENTS_DATABASE_URL": database,
        "MEDMESH_PAYMENTS_VAR_DIR": str(tmp_path),
        "MEDMESH_PAYMENTS_ISSUER": "http://auth.test",
        "MEDMESH_PAYMENTS_JWT_HS256_SECRET": SECRET,
        "MEDMESH_PAYMENTS_REVOCATION_POLL_SECONDS": "0",
        "MEDMESH_PAYMENTS_LOG_FILE": str(tmp_path / "payments.log"),
        "MEDMESH_PAYMENTS_WEBHOOK_POLL_SECONDS": "0.05",
        "MEDMESH_PAYMENTS_WEBHOOK_BACKOFF_SECONDS": "0.1",
        "MEDMESH_PAYMENTS_WEBHOOK_MAX_BACKOFF_SECONDS": "0.2",
        "MEDMESH_PAYMENTS_WEBHOOK_TIMEOUT_SECONDS": "1",
    }
    headers = {"Authorization": "Bearer " + _token()}
    receiver = Receiver()
    receiver.up = False
    gateway = _start(port, env)
    try:
        async with serve_app(receiver.app) as hooks, httpx.AsyncClient(base_url=url) as http:
            await _ready(url, gateway)
            endpoint = await http.post(
                "/v1/webhook_endpoints",
                data={"url": f"{hooks}/hook", "enabled_events[]": "payment_intent.succeeded"},
                headers=headers,
            )
            assert endpoint.status_code == 200, endpoint.text
            paid = await http.post(
                "/v1/payment_intents",
                data={
                    "amount": "4200",
                    "currency": "usd",
                    "payment_method": "pm_card_visa",
                    "confirm": "true",
                },
                headers=headers,
            )
            assert paid.json()["status"] == "succeeded"
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=30)
            assert receiver.received == []

            receiver.up = True
            gateway = _start(port, env)
            await _ready(url, gateway)
            await receiver.wait_for(1)
            await asyncio.sleep(1.0)  # a second delivery would arrive by now
        assert len(receiver.received) == 1
        event = stripe.Webhook.construct_event(*receiver.received[0], endpoint.json()["secret"])
        assert event.data.object.id == paid.json()["id"]
    finally:
        gateway.kill()
        gateway.wait(timeout=30)
