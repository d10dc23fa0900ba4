"""Webhooks: events reach the endpoints that subscribe to them, signed so that the stripe
library's ``Webhook.construct_event`` accepts them, and are retried until the receiver answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medmesh.platform.testing import DatabaseTemplates, TokenFactory, serve_app
from tests.payments.conftest import PaymentsHarness, payments_settings_for, run_payments


class Receiver:
    """A webhook receiver that answers 503 while ``up`` is False and records what it accepts."""

    def __init__(self) -> None:
        self.up = True
        self.refused = 0
        self.received: list[tuple[bytes, str]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        if not self.up:
            self.refused += 1
            return Response(status_code=503)
        self.received.append((await request.body(), request.headers["stripe-signature"]))
        return Response(status_code=200)

    async def wait_for(self, count: int, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} webhooks arrived"
            await asyncio.sleep(0.05)


@pytest.fixture
async def quick_webhooks(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[PaymentsHarness]:
    settings = payments_settings_for(
        database_url,
        tmp_path,
        webhook_poll_seconds=0.05,
        webhook_backoff_seconds=0.1,
        webhook_max_backoff_seconds=0.2,
    )
    async with run_payments(settings, token_factory, database_templates) as harness:
        yield harness


async def _endpoint(payments: PaymentsHarness, url: str, *events: str) -> dict[str, Any]:
    data: dict[str, Any] = {"url": url, "enabled_events[]": list(events)}
    endpoint: dict[str, Any] = await payments.ok("/v1/webhook_endpoints", data)
    return endpoint


@pytest.mark.postgres
async def test_a_webhook_is_verified_by_the_stripe_library(
    quick_webhooks: PaymentsHarness,
) -> None:
    payments = quick_webhooks
    receiver = Receiver()
    async with serve_app(receiver.app) as base:
        endpoint = await _endpoint(payments, f"{base}/hook", "payment_intent.succeeded")
        assert endpoint["id"].startswith("we_")
        assert endpoint["secret"].startswith("whsec_")
        assert "secret" not in await payments.get(f"/v1/webhook_endpoints/{endpoint['id']}")
        paid = await payments.paid_intent()
        await receiver.wait_for(1)
    body, signature = receiver.received[0]
    event = stripe.Webhook.construct_event(body, signature, endpoint["secret"])
    assert event.type == "payment_intent.succeeded"
    assert event.data.object.id == paid["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_other")
    assert len(receiver.received) == 1  # the created event was not subscribed to


@pytest.mark.postgres
async def test_a_webhook_is_retried_until_the_receiver_answers(
    quick_webhooks: PaymentsHarness,
) -> None:
    payments = quick_webhooks
    receiver = Receiver()
    receiver.up = False
    async with serve_app(receiver.app) as base:
        endpoint = await _endpoint(payments, f"{base}/hook", "*")
        customer = await payments.ok("/v1/customers", {"name": "A"})
        deadline = time.monotonic() + 30
        while receiver.refused < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        deliveries_url = f"/v1/webhook_endpoints/{endpoint['id']}/deliveries"
        while True:
            [pending] = (await payments.get(deliveries_url))["data"]
            if pending["last_error"] is not None:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert (pending["status"], pending["last_error"]) == ("pending", "HTTP 503")
        receiver.up = True
        await receiver.wait_for(1)
        await asyncio.sleep(0.5)  # a second delivery would arrive by now
    assert len(receiver.received) == 1
    event = stripe.Webhook.construct_event(*receiver.received[0], endpoint["secret"])
    assert (event.type, event.data.object.id) == ("customer.created", customer["id"])
    [delivery] = (await payments.get(deliveries_url))["data"]
    assert (delivery["event"], delivery["status"]) == (event.id, "delivered")
    assert delivery["attempts"] >= 3


@pytest.mark.postgres
async def test_a_rolled_secret_signs_next_to_the_old_one_until_it_expires(
    quick_webhooks: PaymentsHarness,
) -> None:
    payments = quick_webhooks
    receiver = Receiver()
    async with serve_app(receiver.app) as base:
        endpoint = await _endpoint(payments, f"{base}/hook", "customer.created")
        rolled = await payments.ok(f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret")
        assert rolled["secret"] != endpoint["secret"]
        await payments.ok("/v1/customers", {"name": "A"})
        await receiver.wait_for(1)
        body, signature = receiver.received[0]
        assert signature.count("v1=") == 2
        for secret in (endpoint["secret"], rolled["secret"]):
            assert (
                stripe.Webhook.construct_event(body, signature, secret).type == "customer.created"
            )

        ended = await payments.ok(
            f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret", {"expires_in": "0"}
        )
        await payments.ok("/v1/customers", {"name": "B"})
        await receiver.wait_for(2)
    body, signature = receiver.received[1]
    assert signature.count("v1=") == 1
    assert (
        stripe.Webhook.construct_event(body, signature, ended["secret"]).type == "customer.created"
    )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, rolled["secret"])


async def test_endpoint_crud_and_bad_input(payments: PaymentsHarness) -> None:
    bad_url = await payments.post(
        "/v1/webhook_endpoints", {"url": "ftp://x", "enabled_events[]": "*"}
    )
    assert bad_url.status_code == 400
    assert bad_url.json()["error"]["param"] == "url"
    bad_event = await payments.post(
        "/v1/webhook_endpoints", {"url": "https://h.example/x", "enabled_events[]": "charge.won"}
    )
    assert bad_event.json()["error"]["param"] == "enabled_events"
    created = await _endpoint(payments, "https://h.example/x", "refund.created")
    updated = await payments.ok(
        f"/v1/webhook_endpoints/{created['id']}",
        {"disabled": "true", "enabled_events[]": ["refund.created", "refund.updated"]},
    )
    assert (updated["status"], updated["enabled_events"]) == (
        "disabled",
        ["refund.created", "refund.updated"],
    )
    listed = await payments.get("/v1/webhook_endpoints")
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    gone = await payments.http.delete(
        f"/v1/webhook_endpoints/{created['id']}", headers=payments.headers()
    )
    assert gone.json() == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    patient = payments.headers("payments:write", patient="p-1")
    assert (await payments.http.get("/v1/webhook_endpoints", headers=patient)).status_code == 403


async def test_a_url_with_a_malformed_host_is_a_400_and_makes_no_endpoint(
    payments: PaymentsHarness,
) -> None:
    for url in ("http://[", "https://[::1/x"):
        refused = await payments.post(
            "/v1/webhook_endpoints", {"url": url, "enabled_events[]": "*"}
        )
        assert refused.status_code == 400
        assert refused.json() == {
            "error": {
                "type": "invalid_request_error",
                "code": "parameter_invalid",
                "message": "Invalid URL: it must be an absolute http or https URL",
                "param": "url",
            }
        }
    assert (await payments.get("/v1/webhook_endpoints"))["data"] == []
