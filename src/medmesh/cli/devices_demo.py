"""`medmesh up`'s demo device: a pulse oximeter registered and assigned to phi's demo patient.

It goes through the medical-device service's registry API as any client would, with the admin
token `medmesh up` prints. What exists is left alone: the device is found by its serial number
and keeps its open assignment, so running `medmesh up` again registers nothing twice. Its key is
shown only when it is made (only its hash is stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from medmesh.cli.payments_demo import DEMO_PATIENT

DEMO_SERIAL = "MEDMESH-DEMO-OXIMETER-1"
DEMO_DEVICE = {
    "manufacturer": "medmesh demo",
    "model": "Pulse oximeter",
    "serial_number": DEMO_SERIAL,
    "type": {"code": "706767009", "display": "Patient data recorder"},
}


@dataclass(frozen=True)
class DemoDevice:
    """The demo device, its patient, and what this run made."""

    id: str
    patient: str | None
    key: str | None
    created: bool

    def summary(self) -> str:
        state = "registered now" if self.created else "already there"
        patient = f"assigned to {self.patient}" if self.patient else "assigned to no patient"
        return f"pulse oximeter {self.id} {patient} ({state})"


def _answer(response: httpx.Response, expected: int = 200) -> dict[str, Any]:
    if response.status_code != expected:
        try:
            message = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {message}"
        )
    body: dict[str, Any] = response.json()
    return body


def _find(http: httpx.Client) -> dict[str, Any] | None:
    """The device with the demo serial number, paging through the registry."""
    params: dict[str, str | int] = {"limit": 100}
    while True:
        page = _answer(http.get("/v1/devices", params=params))
        for device in page["data"]:
            if device.get("serial_number") == DEMO_SERIAL:
                found: dict[str, Any] = device
                return found
        if not page["next_after"]:
            return None
        params["after"] = page["next_after"]


def seed_demo_device(
    base_url: str, token: str, *, patient: str | None = DEMO_PATIENT
) -> DemoDevice:
    """Register the demo device at ``base_url`` and assign it to ``patient`` (when given and it
    has no patient now). Raises ``RuntimeError`` naming the request the service refused."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as http:
        device = _find(http)
        key = None
        if device is None:
            device = _answer(http.post("/v1/devices", json=DEMO_DEVICE), 201)
            key = str(device["credential"]["key"])
        assignment = device.get("assignment")
        if assignment is None and patient:
            path = f"/v1/devices/{device['id']}/assignments"
            assignment = _answer(http.post(path, json={"patient": patient}), 201)
    assigned = str(assignment["patient"]) if assignment else None
    return DemoDevice(str(device["id"]), assigned, key, key is not None)
