"""``POST /v1/mqtt/authenticate``: the broker asks whether a device may connect.

A broker with HTTP authentication (EMQX's `http` authenticator; an auth plugin such as
mosquitto-go-auth's HTTP backend for Mosquitto) sends the user name and password a client
connects with. A device connects as its device id with one of its live keys: it is allowed, with
an ACL that lets it publish on its own readings topic only and an ``expire_at`` after which the
broker asks again. A user name that is no device id is ``ignore`` (the broker goes on to its own
users, e.g. the subscriber's); a device with a wrong, revoked or another device's key, or a
device that is not active, is ``deny``. The broker proves itself with a shared secret.
"""

from __future__ import annotations

import hmac
import time
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from medmesh.devices.components import Components
from medmesh.devices.errors import BrokerAuthDisabled, InvalidBrokerSecret
from medmesh.devices.registry.service import DEVICE_PREFIX
from medmesh.platform.db import SessionDep
from medmesh.platform.logging import get_logger

log = get_logger("medmesh.devices.mqtt")
router = APIRouter(prefix="/v1/mqtt", tags=["mqtt"])


class BrokerAuthRequest(BaseModel):
    username: str = Field(max_length=200, description="the client's user name (a device id)")
    password: str = Field(max_length=200, description="the client's password (a device key)")
    clientid: str | None = Field(default=None, max_length=200)


class AclRule(BaseModel):
    permission: Literal["allow", "deny"]
    action: Literal["publish", "subscribe", "all"]
    topic: str


class BrokerAuthAnswer(BaseModel):
    result: Literal["allow", "deny", "ignore"]
    is_superuser: bool = False
    expire_at: int | None = Field(default=None, description="unix seconds; allow only")
    acl: list[AclRule] | None = Field(default=None, description="allow only")


def _check_secret(request: Request, secret: str) -> None:
    if not secret:
        raise BrokerAuthDisabled
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), secret.encode()):
        raise InvalidBrokerSecret


@router.post(
    "/authenticate",
    summary="may this device connect to the broker",
    response_model=BrokerAuthAnswer,
    response_model_exclude_none=True,
    responses={401: {"description": "the broker's secret is wrong"}, 404: {"description": "off"}},
)
async def authenticate(
    body: BrokerAuthRequest, request: Request, components: Components, session: SessionDep
) -> BrokerAuthAnswer:
    """The broker's HTTP authentication of a connecting client (EMQX's request and answer
    shape): `allow` with an ACL for the device's own topic, `deny`, or `ignore` for a user name
    that is no device id."""
    settings = components.settings
    _check_secret(request, settings.mqtt_auth_secret)
    if not body.username.startswith(DEVICE_PREFIX):
        return BrokerAuthAnswer(result="ignore")
    device_id = await components.registry.device_of_key(session, body.password)
    if device_id != body.username:
        log.warning("mqtt_device_refused", device_id=body.username, reason="key")
        return BrokerAuthAnswer(result="deny")
    device = await components.registry.get(session, device_id)
    if device.status != "active":
        log.warning("mqtt_device_refused", device_id=device_id, reason=device.status)
        return BrokerAuthAnswer(result="deny")
    topic = settings.mqtt_topic.replace("+", device_id)
    return BrokerAuthAnswer(
        result="allow",
        expire_at=int(time.time()) + settings.mqtt_auth_ttl_seconds,
        acl=[
            AclRule(permission="allow", action="publish", topic=topic),
            AclRule(permission="deny", action="all", topic="#"),
        ],
    )
