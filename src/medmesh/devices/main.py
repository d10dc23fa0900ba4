"""medical-device service: ``create_app()`` and the ASGI entry ``medmesh.devices.main:app``."""

from __future__ import annotations

from fastapi import FastAPI

from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.components import DevicesComponents, DevicesState
from medmesh.devices.config import DevicesSettings
from medmesh.devices.registry.endpoints import router as registry_router
from medmesh.devices.registry.service import RegistryService
from medmesh.platform.app import create_service_app

VERSION = "0.1.0"
DESCRIPTION = """Remote patient monitoring: a registry of medical devices (modelled on FHIR Device),
each assigned to a patient over time and holding its own keys; readings sent over HTTP or MQTT,
validated and converted to canonical UCUM units, stored, and delivered to phi-service as FHIR R4
Observations through mapping templates.

Scopes: `devices:read`, `devices:write` (the registry), `devices:ingest` (gateways sending
readings of many devices); a device sends its own readings with its key in `X-Device-Key`.
Errors are problem+json.
"""


def create_app(settings: DevicesSettings | None = None) -> FastAPI:
    """Build the medical-device service app."""
    settings = settings or DevicesSettings()
    app = create_service_app(
        settings,
        title="medmesh medical-device service",
        version=VERSION,
        description=DESCRIPTION,
        routers=[registry_router],
        state=DevicesState,
    )
    state = DevicesState.of(app)
    auditor = DevicesAuditor(state.audit)
    state.devices = DevicesComponents(registry=RegistryService(auditor))
    return app


def __getattr__(name: str) -> FastAPI:
    # ``medmesh.devices.main:app`` builds the app on first use, so importing the module stays cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
