"""The service's domain services (built once per app), its typed state, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from medmesh.devices.registry.service import RegistryService
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.state import PlatformState
from medmesh.platform.tokens import Principal, RequireScopes

READ, WRITE, INGEST, ADMIN = "devices:read", "devices:write", "devices:ingest", "devices:admin"


@dataclass
class DevicesComponents:
    registry: RegistryService


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
