"""The control of the MQTT benchmark: a bare subscriber with the service's kind of session (MQTT
v5, a shared subscription, QoS 1, a persistent session, the same receive maximum), acknowledging
each message by hand after parsing its JSON (orjson) — what the broker and one Python MQTT client
move per second with no validation and no database.

Usage: ``python mqtt_control.py HOST PORT SUBSCRIPTION CLIENT_ID COUNT``. With COUNT 0 it makes
its session and subscription, prints ``subscribed`` and leaves (the broker then queues what is
published for it). Otherwise it takes COUNT messages and prints
``done <time.monotonic() of the first> <of the last> <count>``.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

RECEIVE_MAXIMUM = 400  # the service's: twice MQTT_BATCH_MESSAGES


async def main(host: str, port: int, subscription: str, client_id: str, count: int) -> None:
    connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    connect.SessionExpiryInterval = 3600
    connect.ReceiveMaximum = RECEIVE_MAXIMUM
    client = aiomqtt.Client(
        host,
        port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=connect,
    )
    client._client.manual_ack_set(True)
    received = 0
    first = 0.0
    async with client:
        await client.subscribe(subscription, qos=1)
        if count == 0:
            print("subscribed", flush=True)
            return
        async for message in client.messages:
            if not received:
                first = time.monotonic()
            orjson.loads(message.payload if isinstance(message.payload, bytes) else b"{}")
            client._client.ack(message.mid, message.qos)
            received += 1
            if received >= count:
                print(f"done {first} {time.monotonic()} {received}", flush=True)
                return


if __name__ == "__main__":
    host, port, subscription, client_id, count = sys.argv[1:6]
    asyncio.run(main(host, int(port), subscription, client_id, int(count)))
