"""MQTT ingest through a real broker (MEDMESH_TEST_MQTT_URL): a shared subscription, QoS 1,
messages acknowledged only once their readings are committed."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson

from medmesh.devices.components import DevicesState
from medmesh.devices.mqtt.subscriber import MqttSubscriber
from tests.devices.conftest import DevicesHarness
from tests.devices.test_backpressure import writes_held

TS = "2026-03-01T08:00:00Z"


def subscriber(devices: DevicesHarness) -> MqttSubscriber:
    mqtt = DevicesState.of(devices.app).devices.mqtt
    assert mqtt is not None
    return mqtt


async def subscribed(devices: DevicesHarness) -> None:
    await asyncio.wait_for(subscriber(devices).subscribed.wait(), 60)


async def publish(devices: DevicesHarness, device_id: str, *payloads: Any) -> None:
    """Publish each payload with QoS 1 on ``device_id``'s topic (as the device would)."""
    url = urlsplit(devices.settings.mqtt_url)
    topic = devices.settings.mqtt_topic.replace("+", device_id)
    async with aiomqtt.Client(
        url.hostname or "127.0.0.1", url.port or 1883, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        for payload in payloads:
            body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            await client.publish(topic, body, qos=1)


async def stored(devices: DevicesHarness, count: int) -> list[tuple[Any, ...]]:
    """Wait until ``count`` readings are stored; they, in reading-id order."""
    deadline = time.monotonic() + 60
    while True:
        rows = await devices.rows(
            "SELECT reading_id, value, unit FROM readings ORDER BY reading_id"
        )
        if len(rows) >= count:
            return rows
        assert time.monotonic() < deadline, f"{len(rows)} of {count} readings stored"
        await asyncio.sleep(0.05)


async def metric(devices: DevicesHarness, line: str) -> None:
    deadline = time.monotonic() + 60
    while line not in (await devices.http.get("/metrics")).text:
        assert time.monotonic() < deadline, f"no metric line {line!r}"
        await asyncio.sleep(0.05)


def reading(reading_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "timestamp": TS,
        "metric": "heart_rate",
        "value": 70,
        "unit": "/min",
        **fields,
    }


async def test_readings_published_over_mqtt_are_stored_once(mqtt_devices: DevicesHarness) -> None:
    devices = mqtt_devices
    device = await devices.assigned()
    await publish(
        devices,
        device["id"],
        reading("a"),
        {
            "readings": [
                reading("b", value=71),
                reading("c", metric="body_temperature", value=98.6, unit="[degF]"),
            ]
        },
        reading("a"),  # a duplicate delivery
    )
    rows = await stored(devices, 3)
    assert [(r[0], r[2]) for r in rows] == [("a", "/min"), ("b", "/min"), ("c", "Cel")]
    await metric(
        devices, 'medmesh_devices_readings_total{outcome="duplicate",transport="mqtt"} 1.0'
    )
    await metric(devices, 'medmesh_devices_mqtt_messages_total{outcome="accepted"} 3.0')
    assert await devices.rows("SELECT count(*) FROM readings") == [(3,)]
    queued = "SELECT count(*) FROM outbox_messages WHERE topic = 'devices.observations'"
    assert (await devices.rows(queued))[0][0] >= 1
    shown = await devices.ok("GET", f"/v1/devices/{device['id']}")
    assert shown["last_seen"] is not None


async def test_bad_mqtt_messages_are_refused(mqtt_devices: DevicesHarness) -> None:
    devices = mqtt_devices
    device = await devices.assigned()
    other = await devices.register()
    await publish(
        devices,
        device["id"],
        b"{not json",
        [1, 2],
        reading("x", device_id=other["id"]),  # naming another device on this device's topic
        {"readings": [reading("ok"), reading("y", device_id=other["id"]), reading("z", value=900)]},
    )
    await publish(devices, "dev_unknown", reading("u"))
    await metric(devices, 'medmesh_devices_mqtt_messages_total{outcome="refused"} 3.0')
    await metric(devices, 'medmesh_devices_mqtt_messages_total{outcome="accepted"} 2.0')
    await metric(devices, 'medmesh_devices_readings_total{outcome="rejected",transport="mqtt"} 2.0')
    assert await devices.rows("SELECT device_id, reading_id FROM readings") == [
        (device["id"], "ok")
    ]


async def test_a_message_is_acknowledged_only_after_it_is_stored(
    mqtt_devices: DevicesHarness,
) -> None:
    devices = mqtt_devices
    device = await devices.assigned()
    components = DevicesState.of(devices.app).devices
    async with writes_held(devices.database):
        await publish(devices, device["id"], reading("held"))
        await metric(devices, "medmesh_devices_ingest_pending_readings 1.0")
        # The subscriber goes away before the reading is committed: nothing was acknowledged.
        await subscriber(devices).stop()
    assert await devices.rows("SELECT count(*) FROM readings") == [(0,)]
    again = MqttSubscriber(devices.settings, components.intake, components.metrics)
    components.mqtt = again
    await again.start()
    try:
        # The broker sends the unacknowledged message again to the same session.
        rows = await stored(devices, 1)
        assert [r[0] for r in rows] == ["held"]
    finally:
        await again.stop()
