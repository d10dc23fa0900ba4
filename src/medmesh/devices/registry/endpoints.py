"""``/v1/devices``: the registry — devices, their keys and their assignments to patients."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.responses import Response

from medmesh.devices.components import Components, Reader, Writer
from medmesh.devices.registry.schemas import (
    AssignmentCreate,
    AssignmentEnd,
    AssignmentList,
    AssignmentView,
    DeviceCreate,
    DeviceCreated,
    DevicePage,
    DeviceStatus,
    DeviceUpdate,
    DeviceView,
    KeyList,
    KeyView,
    NewKey,
)
from medmesh.devices.registry.views import (
    assignment_view,
    created_view,
    device_view,
    key_view,
    new_key_view,
)
from medmesh.platform.db import SessionDep
from medmesh.platform.paging import KeysetQuery, next_after

router = APIRouter(prefix="/v1/devices", tags=["registry"])
PROBLEM: dict[str, object] = {
    "description": "problem details",
    "content": {"application/problem+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {
    400: PROBLEM,
    401: PROBLEM,
    403: PROBLEM,
    404: PROBLEM,
    409: PROBLEM,
}


@router.post("", status_code=201, summary="register a device", responses=ERRORS)
async def create_device(
    body: DeviceCreate,
    caller: Writer,
    components: Components,
    session: SessionDep,
    response: Response,
) -> DeviceCreated:
    """Registers a device (modelled on FHIR Device) and answers it with its first key in
    `credential.key` — shown this once; only its hash is stored. The device sends readings
    with it in `X-Device-Key`. Needs `devices:write`."""
    row, key, secret = await components.registry.create(session, caller, body)
    response.headers["Location"] = f"/v1/devices/{row.id}"
    return created_view(row, key, secret)


@router.get("", summary="list devices", responses=ERRORS)
async def list_devices(
    caller: Reader,
    components: Components,
    session: SessionDep,
    page: KeysetQuery,
    status: DeviceStatus | None = Query(default=None),
) -> DevicePage:
    """Devices in id order (oldest first), `limit` at a time; `next_after` continues."""
    rows = await components.registry.page(session, page, status)
    assignments = await components.registry.open_assignments(session, [r.id for r in rows])
    return DevicePage(
        data=[device_view(row, assignments.get(row.id)) for row in rows],
        next_after=next_after(rows, page.limit, lambda row: row.id),
    )


@router.get("/{device_id}", summary="a device", responses=ERRORS)
async def get_device(
    device_id: str, caller: Reader, components: Components, session: SessionDep
) -> DeviceView:
    """The device, when it was last seen, and its open assignment."""
    row = await components.registry.get(session, device_id)
    assignments = await components.registry.open_assignments(session, [row.id])
    return device_view(row, assignments.get(row.id))


@router.patch("/{device_id}", summary="change a device", responses=ERRORS)
async def update_device(
    device_id: str, body: DeviceUpdate, caller: Writer, components: Components, session: SessionDep
) -> DeviceView:
    """Changes the fields given (firmware version, status ...). A retired device stays retired;
    only `active` devices are accepted readings."""
    row = await components.registry.update(session, caller, device_id, body)
    assignments = await components.registry.open_assignments(session, [row.id])
    return device_view(row, assignments.get(row.id))


@router.post("/{device_id}/keys", status_code=201, summary="add a key", responses=ERRORS)
async def add_key(
    device_id: str, caller: Writer, components: Components, session: SessionDep
) -> NewKey:
    """A new key for the device, shown this once. The older keys keep working until revoked,
    so a device can be rotated without a gap: add, deploy, revoke the old one."""
    row, secret = await components.registry.add_key(session, caller, device_id)
    return new_key_view(row, secret)


@router.get("/{device_id}/keys", summary="the device's keys", responses=ERRORS)
async def list_keys(
    device_id: str, caller: Reader, components: Components, session: SessionDep
) -> KeyList:
    """Key ids with when each was made and revoked (never the keys)."""
    rows = await components.registry.keys(session, device_id)
    return KeyList(data=[key_view(row) for row in rows])


@router.delete("/{device_id}/keys/{key_id}", summary="revoke a key", responses=ERRORS)
async def revoke_key(
    device_id: str, key_id: str, caller: Writer, components: Components, session: SessionDep
) -> KeyView:
    """The key stops working at once (revoking it again changes nothing)."""
    return key_view(await components.registry.revoke_key(session, caller, device_id, key_id))


@router.post(
    "/{device_id}/assignments", status_code=201, summary="assign to a patient", responses=ERRORS
)
async def assign(
    device_id: str,
    body: AssignmentCreate,
    caller: Writer,
    components: Components,
    session: SessionDep,
) -> AssignmentView:
    """Assigns the device to a patient from `start` (default now) until `end` (open when
    absent). A reading belongs to the patient assigned at its timestamp. Assignments of one
    device never overlap (409): end the current one first."""
    return assignment_view(await components.registry.assign(session, caller, device_id, body))


@router.get("/{device_id}/assignments", summary="the device's assignments", responses=ERRORS)
async def list_assignments(
    device_id: str, caller: Reader, components: Components, session: SessionDep
) -> AssignmentList:
    """Every assignment of the device, oldest first."""
    rows = await components.registry.assignments(session, device_id)
    return AssignmentList(data=[assignment_view(row) for row in rows])


@router.post(
    "/{device_id}/assignments/{assignment_id}/end", summary="end an assignment", responses=ERRORS
)
async def end_assignment(
    device_id: str,
    assignment_id: str,
    body: AssignmentEnd,
    caller: Writer,
    components: Components,
    session: SessionDep,
) -> AssignmentView:
    """Ends an open assignment at `end` (default now); readings after it are the device's
    only (kept, not sent to phi-service) until it is assigned again."""
    row = await components.registry.end_assignment(
        session, caller, device_id, assignment_id, body.end
    )
    return assignment_view(row)
