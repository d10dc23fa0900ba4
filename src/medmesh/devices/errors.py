"""The service's expected failures (rendered as problem+json by the platform)."""

from __future__ import annotations

from medmesh.platform.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)


class DeviceNotFound(NotFound):
    code = "device_not_found"

    def __init__(self, device_id: str) -> None:
        super().__init__(f"no device {device_id!r}")


class KeyNotFound(NotFound):
    code = "key_not_found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key {key_id!r} of this device")


class AssignmentNotFound(NotFound):
    code = "assignment_not_found"

    def __init__(self, assignment_id: str) -> None:
        super().__init__(f"no assignment {assignment_id!r} of this device")


class AssignmentConflict(Conflict):
    """An assignment overlapping another of the same device, or ending before it starts."""

    code = "assignment_conflict"


class DeviceRetired(Conflict):
    code = "device_retired"


class InvalidDeviceKey(Unauthorized):
    """A device key that is unknown, revoked, or of another device (one message for all)."""

    code = "invalid_device_key"

    def __init__(self) -> None:
        super().__init__(
            "the device key is not valid for this device",
            headers={"WWW-Authenticate": 'DeviceKey realm="medmesh-devices"'},
        )


class BatchTooLarge(PayloadTooLarge):
    code = "batch_too_large"


class IngestFull(ServiceUnavailable):
    """More readings waiting to be stored than ``MAX_PENDING_READINGS``: try again shortly."""

    code = "ingest_full"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many readings are waiting to be stored; retry after the Retry-After seconds",
            headers={"Retry-After": str(retry_after)},
        )


class TemplateNotFound(NotFound):
    code = "template_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no mapping template {name!r}")


class InvalidSample(BadRequest):
    """A preview sample the template's metric refuses (unit, bounds, shape)."""

    code = "invalid_sample"


class BrokerAuthDisabled(NotFound):
    code = "broker_auth_disabled"

    def __init__(self) -> None:
        super().__init__("broker authentication is off (MEDMESH_DEVICES_MQTT_AUTH_SECRET is empty)")


class InvalidBrokerSecret(Unauthorized):
    code = "invalid_broker_secret"

    def __init__(self) -> None:
        super().__init__(
            "the broker's secret is missing or wrong",
            headers={"WWW-Authenticate": 'Bearer realm="medmesh-devices-broker"'},
        )
