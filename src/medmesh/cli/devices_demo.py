"""`medmesh up`'s demo device: a pulse oximeter registered and assigned to phi's demo patient,
which then streams ten minutes' worth of simulated vitals.

It goes through the medical-device service's API as any client would, with the admin token
`medmesh up` prints. What exists is left alone: the device is found by its serial number and
keeps its open assignment (from a day back, so the simulated readings fall within it), so
running `medmesh up` again registers nothing twice. Its key is shown only when it is made (only
its hash is stored); the stream uses a key made for the run and revoked after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


def _listed(http: httpx.Client, path: str, **params: str) -> Iterator[dict[str, Any]]:
    """Every object of a keyset-paged listing (``data`` and ``next_after``), page by page."""
    query: dict[str, str | int] = {"limit": 100, **params}
    while True:
        page = _answer(http.get(path, params=query))
        yield from page["data"]
        if not page["next_after"]:
            return
        query["after"] = page["next_after"]


def _find(http: httpx.Client) -> dict[str, Any] | None:
    """The device with the demo serial number, paging through the registry."""
    return next(
        (d for d in _listed(http, "/v1/devices") if d.get("serial_number") == DEMO_SERIAL), None
    )


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
            since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
            assignment = _answer(http.post(path, json={"patient": patient, "start": since}), 201)
    assigned = str(assignment["patient"]) if assignment else None
    return DemoDevice(str(device["id"]), assigned, key, key is not None)


#: The demo stream: 60 rounds 10 s apart (246 readings, ten minutes of reading time); with this
#: seed and chance of an episode, SpO2 falls to about 86 % from the tenth round for 150 s, so
#: the default rule "SpO2 below 90 % for 60 s" opens an alert that recovery resolves.
DEMO_TICKS = 60
DEMO_SEED = 13
DEMO_ANOMALY_PROBABILITY = 0.03


@dataclass(frozen=True)
class DemoStream:
    """What the demo device's stream did: readings sent and stored, alerts it raised."""

    sent: int
    stored: int
    alerts: list[dict[str, Any]]

    def summary(self) -> str:
        opened = ", ".join(f"{a['metric']} {a['status']}" for a in self.alerts) or "none"
        return (
            f"simulated {self.sent} readings ({self.stored} stored) over the last "
            f"{DEMO_TICKS * 10 // 60} minutes; alerts: {opened}"
        )


def stream_demo_vitals(base_url: str, token: str, device_id: str) -> DemoStream:
    """Send the demo stream from ``device_id`` with a key made for it (revoked afterwards); the
    alerts the device has since the stream began."""
    from medmesh.devices.simulation.streaming import HttpSender, SimulatedDevice, simulate

    headers = {"Authorization": f"Bearer {token}"}
    began = datetime.now(UTC) - timedelta(seconds=DEMO_TICKS * 10)
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as http:
        made = _answer(http.post(f"/v1/devices/{device_id}/keys"), 201)

        async def run() -> tuple[int, int]:
            device = SimulatedDevice(device_id, str(made["key"]))
            async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
                done = await simulate(
                    [device],
                    HttpSender(client),
                    rate=0,
                    ticks=DEMO_TICKS,
                    seed=DEMO_SEED,
                    anomaly_probability=DEMO_ANOMALY_PROBABILITY,
                    start=began,
                )
            return done.sent, done.stored

        try:
            sent, stored = asyncio.run(run())
        finally:
            _answer(http.delete(f"/v1/devices/{device_id}/keys/{made['id']}"))
        alerts = [
            alert
            for alert in _listed(http, "/v1/alerts", device_id=device_id)
            if datetime.fromisoformat(alert["opened_at"]) >= began
        ]
    return DemoStream(sent, stored, alerts)
