"""MQTT ingest: one subscriber per replica on an MQTT v5 shared subscription
(``$share/<group>/<topic>``), so replicas split the messages. Messages arrive with QoS 1 and
are acknowledged only after their readings are committed: a message whose batch was not stored
(the process died, the database failed, ingest was full) is sent again by the broker. The
session is persistent (a stable client id, ``clean_start`` off), so messages in flight when the
connection breaks come back after reconnecting; the client's receive maximum bounds how many
unacknowledged messages the broker sends at once (the back-pressure of this path).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from medmesh.devices.config import DevicesSettings
from medmesh.devices.errors import IngestFull
from medmesh.devices.ingest.intake import ReadingIntake
from medmesh.devices.metrics import DevicesMetrics
from medmesh.devices.mqtt import paho_tables
from medmesh.devices.mqtt.messages import ParsedMessage, parse_message
from medmesh.platform.logging import get_logger
from medmesh.platform.origin import RequestOrigin

log = get_logger("medmesh.devices.mqtt")
SESSION_EXPIRY_SECONDS = 3600
ORIGIN = RequestOrigin(ip="mqtt")
#: Turns of the event loop without a new message after which a batch is stored (at most
#: ``MAX_IDLE_TURNS`` while the socket still has bytes: a large message takes several reads).
IDLE_TURNS, MAX_IDLE_TURNS = 3, 64


def client_id(settings: DevicesSettings) -> str:
    return (
        settings.mqtt_client_id
        or f"medmesh-devices-{socket.gethostname()}-{settings.effective_port}"
    )


class MqttSubscriber:
    def __init__(
        self, settings: DevicesSettings, intake: ReadingIntake, metrics: DevicesMetrics
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.metrics = metrics
        url = urlsplit(settings.mqtt_url)
        self.hostname = url.hostname or "127.0.0.1"
        self.tls = url.scheme == "mqtts"
        self.port = url.port or (8883 if self.tls else 1883)
        self.subscription = f"$share/{settings.mqtt_group}/{settings.mqtt_topic}"
        self._task: asyncio.Task[None] | None = None
        #: Set while subscribed (tests and readiness wait for it).
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        if not paho_tables.install():
            log.info("mqtt_paho_tables_not_installed", paho=paho.mqtt.__version__)
        self._task = asyncio.create_task(self._run(), name="devices-mqtt")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _client(self) -> aiomqtt.Client:
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        connect.ReceiveMaximum = min(65535, self.settings.mqtt_batch_messages * 2)
        client = aiomqtt.Client(
            self.hostname,
            self.port,
            identifier=client_id(self.settings),
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            username=self.settings.mqtt_username or None,
            password=self.settings.mqtt_password or None,
            properties=connect,
            tls_params=aiomqtt.TLSParameters() if self.tls else None,
        )
        # Acknowledge by hand, after the readings are committed (aiomqtt has no option for it).
        client._client.manual_ack_set(True)
        return client

    async def _run(self) -> None:
        while True:
            try:
                async with self._client() as client:
                    await client.subscribe(self.subscription, qos=1)
                    self.metrics.mqtt_connected.set(1)
                    self.metrics.mqtt_subscriptions.inc()
                    self.subscribed.set()
                    log.info("mqtt_subscribed", broker=f"{self.hostname}:{self.port}")
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                log.warning("mqtt_disconnected", error=type(exc).__name__)
            finally:
                self.subscribed.clear()
                self.metrics.mqtt_connected.set(0)
            await asyncio.sleep(self.settings.mqtt_reconnect_seconds)

    async def _consume(self, client: aiomqtt.Client) -> None:
        pending: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()

        async def receive() -> None:
            async for message in client.messages:
                pending.put_nowait(message)

        receiver = asyncio.create_task(receive())
        try:
            while True:
                getter = asyncio.ensure_future(pending.get())
                done, _ = await asyncio.wait(
                    {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    receiver.result()  # the connection ended: raise its error
                    raise aiomqtt.MqttError("the message stream ended")
                batch = await self._gather(client, getter.result(), pending)
                await self._store(batch)
                for message in batch:
                    client._client.ack(message.mid, message.qos)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await receiver

    async def _gather(
        self,
        client: aiomqtt.Client,
        first: aiomqtt.Message,
        pending: asyncio.Queue[aiomqtt.Message],
    ) -> list[aiomqtt.Message]:
        """``first`` and the messages already on their way, up to ``MQTT_BATCH_MESSAGES``.

        The MQTT client reads one packet off the socket per turn of the event loop, so a backlog
        sitting in the socket's buffer reaches ``pending`` only as the loop turns: it is given
        turns while the socket has bytes to read, and a few more for what was read to arrive.
        """
        sock = client._client.socket()
        batch = [first]
        idle = 0
        while len(batch) < self.settings.mqtt_batch_messages:
            if not pending.empty():
                batch.append(pending.get_nowait())
                idle = 0
                continue
            if idle >= MAX_IDLE_TURNS or (idle >= IDLE_TURNS and not _readable(sock)):
                break
            idle += 1
            await asyncio.sleep(0)
        return batch

    async def _store(self, batch: list[aiomqtt.Message]) -> None:
        """Store the batch's readings (retrying while ingest is full); returns once committed."""
        limit = self.settings.max_batch_readings
        parsed = [
            parse_message(self.settings.mqtt_topic, str(m.topic), _bytes(m.payload), limit)
            for m in batch
        ]
        entries: list[Any] = []
        for message in parsed:
            entries.extend(message.entries)
        for start in range(0, len(entries), limit):
            while True:
                try:
                    await self.intake.store(
                        ORIGIN,
                        entries[start : start + limit],
                        device_id=None,
                        actor="mqtt",
                        transport="mqtt",
                    )
                    break
                except IngestFull:
                    await asyncio.sleep(self.settings.retry_after_seconds)
        for message in parsed:
            self._count(message)

    def _count(self, message: ParsedMessage) -> None:
        if message.error is not None or not message.entries:
            self.metrics.mqtt_messages.labels("refused").inc()
            code = message.error or "wrong_device"
            log.warning("mqtt_message_refused", code=code, device_id=message.device_id)
            return
        self.metrics.mqtt_messages.labels("accepted").inc()
        if message.refused:
            log.warning("mqtt_entries_refused", code="wrong_device", device_id=message.device_id)


def _readable(sock: Any) -> bool:
    """Whether bytes wait in ``sock``'s receive buffer (no wait); False once it is closed."""
    try:
        return sock is not None and bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # closed under us: the connection ended
        return False


def _bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return str(payload).encode()
