"""Streaming simulated vitals into the service, over HTTP (each device with its key) or MQTT
(each device on its own topic), at a given rate of readings per second, with progress."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import orjson

from medmesh.devices.simulation.vitals import DeviceVitals


@dataclass(frozen=True)
class SimulatedDevice:
    device_id: str
    key: str


@dataclass
class Progress:
    sent: int = 0
    stored: int = 0
    rejected: int = 0
    started: float = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


class Sender(Protocol):
    async def send(
        self, device: SimulatedDevice, readings: list[dict[str, Any]], progress: Progress
    ) -> None: ...


class HttpSender:
    """``POST /v1/devices/{id}/readings`` with the device's key."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(
        self, device: SimulatedDevice, readings: list[dict[str, Any]], progress: Progress
    ) -> None:
        response = await self.http.post(
            f"/v1/devices/{device.device_id}/readings",
            content=orjson.dumps({"readings": readings}),
            headers={"X-Device-Key": device.key, "Content-Type": "application/json"},
        )
        response.raise_for_status()
        body = response.json()
        progress.stored += body["stored"]
        progress.rejected += body["rejected"]


class MqttSender:
    """QoS 1 publishes on ``medmesh/devices/<id>/readings``, each device through its own
    connected client (as the device itself: with a broker set up as docs/devices.md says, a
    device may publish on its own topic only)."""

    def __init__(
        self, clients: Mapping[str, Any], topic: str = "medmesh/devices/+/readings"
    ) -> None:
        self.clients = clients
        self.topic = topic

    async def send(
        self, device: SimulatedDevice, readings: list[dict[str, Any]], progress: Progress
    ) -> None:
        topic = self.topic.replace("+", device.device_id)
        client = self.clients[device.device_id]
        await client.publish(topic, orjson.dumps({"readings": readings}), qos=1)


async def simulate(
    devices: Sequence[SimulatedDevice],
    sender: Sender,
    *,
    rate: float,
    ticks: int,
    seed: int = 1,
    anomaly_probability: float = 0.002,
    interval_seconds: float = 10.0,
    start: datetime | None = None,
    on_progress: Callable[[Progress], Awaitable[None] | None] | None = None,
    run: str = "",
) -> Progress:
    """Send ``ticks`` rounds of readings for every device, paced to about ``rate`` readings
    per second (0: as fast as the service answers). Reading times step ``interval_seconds``
    per tick from ``start`` (default: now minus the whole run, so no reading is in the future).
    Reading ids carry ``run`` (default: random), so a device's next run sends new readings."""
    rng = random.Random(seed)  # noqa: S311 - simulated vitals, not secrets
    run = run or secrets.token_hex(4)
    vitals = [
        DeviceVitals(
            d.device_id,
            random.Random(rng.random()),  # noqa: S311
            anomaly_probability,
            run,
        )
        for d in devices
    ]
    first = start or datetime.now(UTC) - timedelta(seconds=interval_seconds * ticks)
    progress = Progress(started=time.monotonic())
    for tick in range(ticks):
        at = first + timedelta(seconds=interval_seconds * tick)
        for device, state in zip(devices, vitals, strict=True):
            readings = state.next_readings(at)
            await sender.send(device, readings, progress)
            progress.sent += len(readings)
            if rate > 0:
                ahead = progress.sent / rate - (time.monotonic() - progress.started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        if on_progress is not None:
            result = on_progress(progress)
            if result is not None:
                await result
    return progress
