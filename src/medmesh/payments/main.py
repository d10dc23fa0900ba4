"""payment-gateway: ``create_app()`` and the ASGI entry ``medmesh.payments.main:app``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from medmesh.payments.components import PaymentsComponents, PaymentsState
from medmesh.payments.config import PaymentsSettings
from medmesh.payments.connectors import connector_for
from medmesh.payments.customers.endpoints import router as customers_router
from medmesh.payments.customers.service import CustomerService
from medmesh.payments.errors import render_stripe_error
from medmesh.payments.events.endpoints import router as events_router
from medmesh.payments.events.service import EventService
from medmesh.payments.expansion import Expander
from medmesh.payments.idempotency.service import IdempotentWrites
from medmesh.payments.ledger.endpoints import router as ledger_router
from medmesh.payments.ledger.service import LedgerService
from medmesh.payments.metrics import PaymentsMetrics
from medmesh.payments.patient_records.delivery import phi_delivery
from medmesh.payments.patient_records.recording import TOPIC as PHI_TOPIC
from medmesh.payments.patient_records.recording import PatientRecords
from medmesh.payments.payment_intents.endpoints import router as payment_intents_router
from medmesh.payments.payment_intents.service import PaymentIntentService
from medmesh.payments.payment_methods.cards import CardFingerprints
from medmesh.payments.payment_methods.endpoints import router as payment_methods_router
from medmesh.payments.payment_methods.service import PaymentMethodService
from medmesh.payments.refunds.endpoints import router as refunds_router
from medmesh.payments.refunds.service import RefundService
from medmesh.payments.webhooks.delivery import TOPIC as WEBHOOK_TOPIC
from medmesh.payments.webhooks.delivery import signed_delivery
from medmesh.payments.webhooks.endpoints import router as webhooks_router
from medmesh.payments.webhooks.service import WebhookEndpointService
from medmesh.platform.app import create_service_app
from medmesh.platform.background import running
from medmesh.platform.outbox import Deliver, OutboxMessage, OutboxWorker
from medmesh.platform.service_client import ServiceClient

VERSION = "0.1.0"
DESCRIPTION = """Patient payments through a Stripe-compatible subset under `/v1`.

Bodies are form-encoded with Stripe's bracket notation (`metadata[key]=value`) or JSON; objects,
list objects and error objects have Stripe's shapes, so Stripe's client libraries work with the
API base pointed here and an access token from auth-service as their API key (scopes
`payments:read`, `payments:write`, `payments:admin`). Every POST takes an `Idempotency-Key`.
Card numbers are tokenized at once and never stored, logged or returned.
"""


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    """Build the payment-gateway app."""
    settings = settings or PaymentsSettings()

    @asynccontextmanager
    async def purge_idempotency_keys(app: FastAPI) -> AsyncIterator[None]:
        writes = PaymentsState.of(app).payments.writes
        purge = writes.purge_periodically(settings.idempotency_purge_seconds)
        async with running(purge, "payments-idempotency-purge"):
            yield

    @asynccontextmanager
    async def deliver_outbox(app: FastAPI) -> AsyncIterator[None]:
        """Webhooks and phi records: one outbox worker, each message to its topic's delivery."""
        state = PaymentsState.of(app)
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
            )
            deliveries = {WEBHOOK_TOPIC: signed_delivery(state.database, client)}
            if settings.records_payments_in_phi:
                phi = ServiceClient(
                    settings.phi_url.rstrip("/") + "/fhir",
                    token_url=settings.effective_token_url,
                    client_id=settings.phi_client_id,
                    client_secret=settings.phi_client_secret,
                    scope=settings.phi_scope,
                    timeout=settings.webhook_timeout_seconds,
                    retries=0,
                )
                await stack.enter_async_context(phi)
                deliveries[PHI_TOPIC] = phi_delivery(phi)
            worker = OutboxWorker(
                state.database,
                by_topic(deliveries),
                poll_interval=settings.webhook_poll_seconds,
                max_attempts=settings.webhook_max_attempts,
                base_backoff=settings.webhook_backoff_seconds,
                max_backoff=settings.webhook_max_backoff_seconds,
                lease_seconds=3 * settings.webhook_timeout_seconds,
            )
            await worker.start()
            try:
                yield
            finally:
                await worker.stop()

    app = create_service_app(
        settings,
        title="medmesh payment-gateway",
        version=VERSION,
        description=DESCRIPTION,
        routers=[
            customers_router,
            events_router,
            ledger_router,
            payment_methods_router,
            payment_intents_router,
            refunds_router,
            webhooks_router,
        ],
        error_renderers=[("/v1", render_stripe_error)],
        lifespans=[purge_idempotency_keys, deliver_outbox],
        state=PaymentsState,
    )
    state = PaymentsState.of(app)
    connector = connector_for(settings)
    fingerprints = CardFingerprints.from_setting(
        settings.fingerprint_key, settings.var_dir, settings.environment
    )
    ledger = LedgerService()
    customers = CustomerService()
    payment_methods = PaymentMethodService(connector, fingerprints, customers)
    records = PatientRecords(settings.records_payments_in_phi)
    payment_intents = PaymentIntentService(
        connector, customers, payment_methods, ledger, records, settings.effective_public_url
    )
    state.payments = PaymentsComponents(
        writes=IdempotentWrites(
            state.database,
            state.audit,
            PaymentsMetrics.register(state.metrics),
            settings.idempotency_hours,
            fingerprints.derived_key("idempotency"),
        ),
        customers=customers,
        payment_methods=payment_methods,
        payment_intents=payment_intents,
        refunds=RefundService(connector, payment_intents, ledger, records),
        ledger=ledger,
        expander=Expander(customers, payment_methods, payment_intents),
        events=EventService(),
        webhooks=WebhookEndpointService(),
    )
    return app


def by_topic(deliveries: dict[str, Deliver]) -> Deliver:
    """One ``deliver`` for the outbox worker: each message to its topic's."""

    async def deliver(message: OutboxMessage) -> None:
        await deliveries[message.topic](message)

    return deliver


def __getattr__(name: str) -> FastAPI:
    # ``medmesh.payments.main:app`` builds the app on first use, so importing the module stays cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
