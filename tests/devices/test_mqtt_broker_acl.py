"""The broker set-up of docs/devices.md: each device a Mosquitto user named by its device id
with its key as password, and an ACL pattern that lets it publish on its own topic only. A
device publishing on another device's topic is refused by the broker; nothing of it is stored.

Runs when MEDMESH_TEST_MQTT_URL is set (as in CI, where Mosquitto is installed), with a
Mosquitto process of its own on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from medmesh.devices.config import DevicesSettings
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import devices_settings_for, run_devices
from tests.devices.test_mqtt import stored, subscribed

SUBSCRIBER, SUBSCRIBER_PASSWORD = "medmesh-devices", "subscriber-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """A Mosquitto of the test's own (users and ACL as docs/devices.md sets them up; with
    ``persistent``, sessions and queued messages survive a restart)."""

    def __init__(self, folder: Path, *, persistent: bool = False) -> None:
        self.folder = folder
        self.persistent = persistent
        self.port = _free_port()
        self.passwords = folder / "passwd"
        self.process: subprocess.Popen[bytes] | None = None

    def add_user(self, name: str, password: str) -> None:
        create = [] if self.passwords.exists() else ["-c"]
        subprocess.run(
            ["mosquitto_passwd", "-b", *create, str(self.passwords), name, password], check=True
        )
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)  # Mosquitto reads the password file again

    def start(self) -> None:
        acl = self.folder / "acl"
        acl.write_text(
            f"user {SUBSCRIBER}\n"
            "topic read $share/medmesh-devices/medmesh/devices/+/readings\n"
            "topic read medmesh/devices/+/readings\n"
            "pattern write medmesh/devices/%u/readings\n"
        )
        config = self.folder / "mosquitto.conf"
        persistence = (
            f"persistence true\npersistence_location {self.folder}/\n"
            if self.persistent
            else "persistence false\n"
        )
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {self.passwords}\nacl_file {acl}\n{persistence}"
            "max_queued_messages 1000000\n" + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            assert self.process.poll() is None, "mosquitto exited"
            assert time.monotonic() < deadline, "mosquitto did not listen"
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def broker(mqtt_url: str, tmp_path: Path) -> Iterator[Broker]:
    assert shutil.which("mosquitto"), "MEDMESH_TEST_MQTT_URL is set but mosquitto is not installed"
    broker = Broker(tmp_path)
    broker.add_user(SUBSCRIBER, SUBSCRIBER_PASSWORD)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def broker_settings(broker: Broker, database_url: str, folder: Path, name: str) -> DevicesSettings:
    """A devices service subscribing to ``broker`` as its subscriber user."""
    return devices_settings_for(
        database_url,
        folder,
        mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
        mqtt_username=SUBSCRIBER,
        mqtt_password=SUBSCRIBER_PASSWORD,
        mqtt_client_id=f"{name}-{broker.port}",
        mqtt_reconnect_seconds=0.1,
    )


async def connect_as(broker: Broker, user: str, password: str, **options: Any) -> aiomqtt.Client:
    """A client connected as ``user``, retrying while the broker reads its password file again
    (after ``add_user``); the caller disconnects it."""
    deadline = time.monotonic() + 30
    while True:
        client = aiomqtt.Client(
            "127.0.0.1",
            broker.port,
            username=user,
            password=password,
            protocol=aiomqtt.ProtocolVersion.V5,
            **options,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttCodeError:
            assert time.monotonic() < deadline, "the device could not connect"
            await asyncio.sleep(0.1)
        else:
            return client


async def publish_as(broker: Broker, user: str, password: str, topic: str, body: bytes) -> None:
    """Publish with QoS 1 as ``user``."""
    client = await connect_as(broker, user, password)
    try:
        await client.publish(topic, body, qos=1)
    finally:
        await client.__aexit__(None, None, None)


async def test_a_device_cannot_publish_on_another_devices_topic(
    broker: Broker,
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    settings = broker_settings(broker, database_url, tmp_path, "acl")
    async with run_devices(settings, token_factory, database_templates) as devices:
        await subscribed(devices)
        mine = await devices.assigned("Patient/p1")
        theirs = await devices.assigned("Patient/p2")
        broker.add_user(mine["id"], mine["credential"]["key"])

        def reading(reading_id: str) -> bytes:
            return orjson.dumps(
                {
                    "reading_id": reading_id,
                    "timestamp": "2026-03-01T08:00:00Z",
                    "metric": "spo2",
                    "value": 97,
                    "unit": "%",
                }
            )

        await publish_as(
            broker,
            mine["id"],
            mine["credential"]["key"],
            f"medmesh/devices/{theirs['id']}/readings",
            reading("forged"),
        )
        await publish_as(
            broker,
            mine["id"],
            mine["credential"]["key"],
            f"medmesh/devices/{mine['id']}/readings",
            reading("own"),
        )
        # The own reading was published after the forged one on the same broker: once it is
        # stored, the forged one would have been too.
        await stored(devices, 1)
        assert await devices.rows("SELECT device_id, reading_id FROM readings") == [
            (mine["id"], "own")
        ]
        # A wrong password does not connect at all.
        with pytest.raises(aiomqtt.MqttCodeError):
            async with aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username=mine["id"],
                password="mdk_wrong",
                protocol=aiomqtt.ProtocolVersion.V5,
            ):
                pass


async def test_the_subscriber_reconnects_after_a_broker_restart(
    mqtt_url: str,
    tmp_path: Path,
    database_url: str,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    broker = Broker(tmp_path / "broker", persistent=True)
    broker.folder.mkdir()
    broker.add_user(SUBSCRIBER, SUBSCRIBER_PASSWORD)
    broker.start()
    settings = broker_settings(broker, database_url, tmp_path, "restart")
    try:
        async with run_devices(settings, token_factory, database_templates) as devices:
            await subscribed(devices)
            device = await devices.assigned("Patient/p1")
            key = device["credential"]["key"]
            broker.add_user(device["id"], key)
            topic = f"medmesh/devices/{device['id']}/readings"

            def reading(reading_id: str) -> bytes:
                return orjson.dumps(
                    {
                        "reading_id": reading_id,
                        "timestamp": "2026-03-01T08:00:00Z",
                        "metric": "heart_rate",
                        "value": 70,
                        "unit": "/min",
                    }
                )

            for n in range(50):
                await publish_as(broker, device["id"], key, topic, reading(f"a{n}"))
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(broker.start)
            # Mosquitto does not keep a shared subscription across its restart: what devices
            # publish before the subscriber is back goes to no one (docs/devices.md).
            deadline = time.monotonic() + 60
            while (
                "medmesh_devices_mqtt_subscriptions_total 2.0"
                not in (await devices.http.get("/metrics")).text
            ):
                assert time.monotonic() < deadline, "the subscriber did not reconnect"
                await asyncio.sleep(0.05)
            for n in range(50):
                await publish_as(broker, device["id"], key, topic, reading(f"b{n}"))
            rows = await stored(devices, 100)
            assert len(rows) == 100
    finally:
        broker.stop()


async def test_a_backlog_beyond_mosquittos_default_queue_is_kept_for_the_subscriber(
    broker: Broker,
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    """With the broker set up as docs/devices.md says (``max_queued_messages`` raised), the
    messages devices publish while the service is away — more than Mosquitto's default queue of
    1000 — all wait in the subscriber's session and are stored once it is back."""
    settings = broker_settings(broker, database_url, tmp_path, "backlog")
    async with run_devices(settings, token_factory, database_templates) as devices:
        await subscribed(devices)
        device = await devices.assigned("Patient/p1")
    key = device["credential"]["key"]
    broker.add_user(device["id"], key)
    client = await connect_as(broker, device["id"], key, max_inflight_messages=200)
    try:
        await asyncio.gather(
            *(
                client.publish(
                    f"medmesh/devices/{device['id']}/readings",
                    orjson.dumps(
                        {
                            "reading_id": f"q{n}",
                            "timestamp": "2026-03-01T08:00:00Z",
                            "metric": "heart_rate",
                            "value": 40 + n % 100,
                            "unit": "/min",
                        }
                    ),
                    qos=1,
                )
                for n in range(1500)
            )
        )
    finally:
        await client.__aexit__(None, None, None)
    # The service's database keeps the device; the subscriber resumes its session.
    async with run_devices(settings, token_factory, None) as devices:
        rows = await stored(devices, 1500)
        assert sorted(r[0] for r in rows) == sorted(f"q{n}" for n in range(1500))
