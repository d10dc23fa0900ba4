"""medical-device service: ``create_app()`` and the ASGI entry ``medmesh.devices.main:app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from medmesh.devices.alerts.defaults import ensure_default_rules
from medmesh.devices.alerts.endpoints import router as alerts_router
from medmesh.devices.alerts.offline import offline_checks
from medmesh.devices.alerts.service import AlertService
from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.components import DevicesComponents, DevicesState
from medmesh.devices.config import DevicesSettings
from medmesh.devices.delivery.worker import backlog_gauges, delivery_worker, phi_delivery
from medmesh.devices.ingest.endpoints import router as ingest_router
from medmesh.devices.ingest.intake import ReadingIntake
from medmesh.devices.metrics import DevicesMetrics
from medmesh.devices.mqtt.broker_auth import router as broker_auth_router
from medmesh.devices.mqtt.subscriber import MqttSubscriber
from medmesh.devices.normalization.endpoints import router as templates_router
from medmesh.devices.normalization.templates import TemplateSet
from medmesh.devices.readings.compaction import ReadingCompaction, compaction_runs
from medmesh.devices.readings.endpoints import router as readings_router
from medmesh.devices.readings.retention import ReadingRetention, retention_runs
from medmesh.devices.readings.service import ReadingQueryService
from medmesh.devices.registry.endpoints import router as registry_router
from medmesh.devices.registry.service import RegistryService
from medmesh.platform.app import create_service_app
from medmesh.platform.service_client import ServiceClient

VERSION = "0.1.0"
DESCRIPTION = """Remote patient monitoring: a registry of medical devices (modelled on FHIR Device),
each assigned to a patient over time and holding its own keys; readings sent over HTTP or MQTT,
validated and converted to canonical UCUM units, stored, and delivered to phi-service as FHIR R4
Observations through mapping templates.

Scopes: `devices:read`, `devices:write` (the registry), `devices:ingest` (gateways sending
readings of many devices); a device sends its own readings with its key in `X-Device-Key`.
Errors are problem+json.
"""


def phi_client(settings: DevicesSettings) -> ServiceClient:
    """phi-service with this service's client-credentials token (none without a secret)."""
    if not settings.phi_client_secret:
        return ServiceClient(settings.phi_url, timeout=settings.delivery_timeout_seconds)
    return ServiceClient(
        settings.phi_url,
        token_url=settings.effective_token_url,
        client_id=settings.phi_client_id,
        client_secret=settings.phi_client_secret,
        scope=settings.phi_scope or None,
        timeout=settings.delivery_timeout_seconds,
    )


def create_app(settings: DevicesSettings | None = None) -> FastAPI:
    """Build the medical-device service app."""
    settings = settings or DevicesSettings()
    templates = TemplateSet.load(settings.template_dir)

    @asynccontextmanager
    async def deliver_observations(app: FastAPI) -> AsyncIterator[None]:
        state = DevicesState.of(app)
        components = state.devices
        if settings.default_alert_rules:
            await ensure_default_rules(state.database)
        webhooks = httpx.AsyncClient(timeout=settings.delivery_timeout_seconds)
        deliver = phi_delivery(
            state.database,
            lambda: components.phi,
            templates,
            components.metrics,
            webhooks,
            settings.alert_webhook_secret,
        )
        worker = delivery_worker(state.database, settings, deliver)
        if settings.delivery_enabled:
            components.intake.on_queued = worker.wake
            await worker.start()
        try:
            async with (
                backlog_gauges(state.database, components.metrics, settings.backlog_poll_seconds),
                offline_checks(
                    state.database,
                    components.alerts,
                    settings.offline_check_seconds,
                    components.intake.on_queued,
                ),
                retention_runs(
                    ReadingRetention(
                        state.database,
                        components.intake.auditor,
                        settings.reading_retention_days,
                    ),
                    settings.retention_check_seconds,
                ),
                compaction_runs(
                    ReadingCompaction(state.database, components.metrics.chunks_merged),
                    settings.reading_compaction_seconds,
                ),
            ):
                yield
        finally:
            if settings.delivery_enabled:
                await worker.stop()
            await components.phi.aclose()
            await webhooks.aclose()

    @asynccontextmanager
    async def subscribe_mqtt(app: FastAPI) -> AsyncIterator[None]:
        components = DevicesState.of(app).devices
        subscriber = MqttSubscriber(settings, components.intake, components.metrics)
        components.mqtt = subscriber
        await subscriber.start()
        try:
            yield
        finally:
            await subscriber.stop()

    app = create_service_app(
        settings,
        title="medmesh medical-device service",
        version=VERSION,
        description=DESCRIPTION,
        routers=[
            registry_router,
            ingest_router,
            broker_auth_router,
            readings_router,
            templates_router,
            alerts_router,
        ],
        lifespans=[deliver_observations, *([subscribe_mqtt] if settings.mqtt_url else [])],
        state=DevicesState,
    )
    state = DevicesState.of(app)
    auditor = DevicesAuditor(state.audit)
    metrics = DevicesMetrics.register(state.metrics)
    state.devices = DevicesComponents(
        settings=settings,
        metrics=metrics,
        registry=RegistryService(auditor, settings.phi_url.rstrip("/") + "/fhir"),
        intake=ReadingIntake(state.database, settings, auditor, metrics),
        queries=ReadingQueryService(auditor),
        alerts=AlertService(auditor, settings.alert_webhook_url),
        templates=templates,
        phi=phi_client(settings),
    )
    return app


def __getattr__(name: str) -> FastAPI:
    # ``medmesh.devices.main:app`` builds the app on first use, so importing the module stays cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
