"""The device simulator: plausible vitals the service stores without a rejection, episodes that
trip alert rules, over HTTP and over the real MQTT broker."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiomqtt

from medmesh.devices.ingest.validation import check_entry
from medmesh.devices.simulation.streaming import (
    HttpSender,
    MqttSender,
    Progress,
    SimulatedDevice,
    simulate,
)
from medmesh.devices.simulation.vitals import DeviceVitals
from tests.devices.conftest import DevicesHarness
from tests.devices.test_mqtt import stored


def test_vitals_are_plausible_and_reproducible() -> None:
    from datetime import timedelta

    start = datetime(2026, 3, 1, tzinfo=UTC)
    now = start + timedelta(days=1)
    first = DeviceVitals("dev_a", random.Random(7), 0.05)
    second = DeviceVitals("dev_a", random.Random(7), 0.05)
    for tick in range(500):
        at = start + timedelta(seconds=10 * tick)
        readings = first.next_readings(at)
        assert readings == second.next_readings(at)
        for reading in readings:
            check_entry({**reading, "device_id": "dev_a"}, None, now, timedelta(0))  # raises if not


async def test_the_simulator_streams_over_http_and_trips_alerts(devices: DevicesHarness) -> None:
    await devices.ok(
        "POST",
        "/v1/alert-rules",
        201,
        json={
            "name": "low SpO2",
            "metric": "spo2",
            "comparison": "lt",
            "threshold": 90,
            "for_seconds": 60,
        },
    )
    registered = [await devices.assigned(f"Patient/p{i}") for i in range(3)]
    simulated = [SimulatedDevice(d["id"], d["credential"]["key"]) for d in registered]
    seen: list[int] = []

    def progress(state: Progress) -> None:
        seen.append(state.sent)

    result = await simulate(
        simulated,
        HttpSender(devices.http),
        rate=0,
        ticks=40,
        seed=3,
        anomaly_probability=0.05,
        on_progress=progress,
    )
    assert result.rejected == 0
    assert result.stored == result.sent
    assert seen[-1] == result.sent
    assert await devices.rows("SELECT count(*) FROM readings") == [(result.sent,)]
    opened = await devices.ok("GET", "/v1/alerts", headers=devices.headers("devices:read"))
    assert {a["metric"] for a in opened["data"]} <= {"spo2"}


async def test_the_simulator_publishes_over_mqtt(mqtt_devices: DevicesHarness) -> None:
    devices = mqtt_devices
    device = await devices.assigned()
    url = urlsplit(devices.settings.mqtt_url)
    async with aiomqtt.Client(
        url.hostname or "127.0.0.1", url.port or 1883, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        result = await simulate(
            [SimulatedDevice(device["id"], device["credential"]["key"])],
            MqttSender({device["id"]: client}, devices.settings.mqtt_topic),
            rate=0,
            ticks=5,
        )
    rows = await stored(devices, result.sent)
    assert len(rows) == result.sent
