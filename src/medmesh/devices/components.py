"""The service's domain services (built once per app), its typed state, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from medmesh.devices.alerts.service import AlertService
from medmesh.devices.config import DevicesSettings
from medmesh.devices.errors import InvalidDeviceKey
from medmesh.devices.ingest.intake import ReadingIntake
from medmesh.devices.metrics import DevicesMetrics
from medmesh.devices.mqtt.subscriber import MqttSubscriber
from medmesh.devices.normalization.templates import TemplateSet
from medmesh.devices.readings.service import ReadingQueryService
from medmesh.devices.registry.service import RegistryService
from medmesh.platform.db import session_for
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.service_client import ServiceClient
from medmesh.platform.state import PlatformState
from medmesh.platform.tokens import Principal, RequireScopes

READ, WRITE, INGEST, ADMIN = "devices:read", "devices:write", "devices:ingest", "devices:admin"


@dataclass
class DevicesComponents:
    settings: DevicesSettings
    metrics: DevicesMetrics
    registry: RegistryService
    intake: ReadingIntake
    queries: ReadingQueryService
    alerts: AlertService
    templates: TemplateSet
    #: The client Bundles go to phi-service with (a test may put its own here before start).
    phi: ServiceClient
    #: The MQTT subscriber while it runs (MQTT_URL set).
    mqtt: MqttSubscriber | None = None


class DevicesState(PlatformState):
    """``app.state`` of the medical-device service."""

    devices: DevicesComponents


async def get_components(request: Request) -> DevicesComponents:
    return DevicesState.of(request.app).devices


Components = Annotated[DevicesComponents, Depends(get_components)]
_CanRead = Annotated[Principal, Depends(RequireScopes(READ, WRITE, ADMIN, any_of=True))]
_CanWrite = Annotated[Principal, Depends(RequireScopes(WRITE, ADMIN, any_of=True))]


async def _reader(request: Request, principal: _CanRead) -> RequestOrigin:
    return RequestOrigin.of(request, principal)


async def _writer(request: Request, principal: _CanWrite) -> RequestOrigin:
    return RequestOrigin.of(request, principal)


#: A caller holding ``devices:read`` (or write, or admin).
Reader = Annotated[RequestOrigin, Depends(_reader)]
#: A caller holding ``devices:write`` (or admin).
Writer = Annotated[RequestOrigin, Depends(_writer)]


_CanIngest = RequireScopes(INGEST)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sends readings: a device with its key (``device_id`` set), or a service token."""

    origin: RequestOrigin
    device_id: str | None

    @property
    def actor(self) -> str | None:
        """The audit actor: the device, or the token's subject."""
        return self.device_id or self.origin.subject


async def _sender(request: Request) -> Sender:
    key = request.headers.get("x-device-key")
    if key is None:
        principal = await _CanIngest(request)
        return Sender(RequestOrigin.of(request, principal), None)
    components = DevicesState.of(request.app).devices
    device_id = await components.registry.device_of_key(session_for(request), key)
    if device_id is None:
        raise InvalidDeviceKey
    return Sender(RequestOrigin.of(request), device_id)


#: A device with its key in ``X-Device-Key``, or a caller holding ``devices:ingest``.
IngestCaller = Annotated[Sender, Depends(_sender)]
