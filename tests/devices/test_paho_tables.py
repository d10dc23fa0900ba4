"""The fast path of MQTT v5 PUBLISH decoding (shared property tables) against paho's own: the
same packets decode to the same topic, id, payload and properties, and it refuses a paho it was
not checked against."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import paho.mqtt
import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from medmesh.devices.mqtt import paho_tables
from medmesh.devices.mqtt.subscriber import _readable


def _properties(**values: object) -> Properties:
    made = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(made, name, value)
    return made


SAMPLES = [
    _properties(),
    _properties(PayloadFormatIndicator=1, ContentType="application/json"),
    _properties(MessageExpiryInterval=3600, ResponseTopic="r/1", CorrelationData=b"\x00\x01"),
    _properties(UserProperty=[("device", "dev_1"), ("fw", "2.1")], SubscriptionIdentifier=[7]),
    _properties(TopicAlias=3),
]


def _packet_body(topic: str, mid: int, properties: Properties, payload: bytes) -> bytes:
    name = topic.encode()
    packed: bytes = properties.pack()  # type: ignore[no-untyped-call]
    return struct.pack("!H", len(name)) + name + struct.pack("!H", mid) + packed + payload


def _decoded(body: bytes) -> tuple[Any, ...]:
    publish = _packet.decode_publish(0x32, body, MQTTProtocolVersion.MQTTv5)  # QoS 1
    found = publish.properties
    assert found is not None
    shown = {k: v for k, v in vars(found).items() if k not in ("types", "names", "properties")}
    return publish.topic, publish.mid, publish.payload, publish.qos, shown, str(found)


@pytest.fixture
def paho_decoder() -> Iterator[object]:
    """paho's decoder as it was before the test (the test may install the fast path)."""
    before = _packet.Properties  # type: ignore[attr-defined]
    yield before
    setattr(_packet, "Properties", before)  # noqa: B010


def test_shared_tables_decode_as_paho_does(paho_decoder: object) -> None:
    setattr(_packet, "Properties", Properties)  # noqa: B010
    bodies = [
        _packet_body(f"medmesh/devices/dev_{n}/readings", n + 1, p, b'{"value": 72}')
        for n, p in enumerate(SAMPLES)
    ]
    plain = [_decoded(body) for body in bodies]
    assert paho_tables.install() is True
    assert _packet.Properties is paho_tables.SharedTableProperties  # type: ignore[attr-defined]
    fast = [_decoded(body) for body in bodies]
    assert fast == plain
    # Decoding again reuses the tables and leaves them as they were.
    assert [_decoded(body) for body in bodies] == plain
    assert plain[3][4]["UserProperty"] == [("device", "dev_1"), ("fw", "2.1")]


def test_a_paho_it_was_not_checked_against_is_left_alone(
    paho_decoder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    setattr(_packet, "Properties", Properties)  # noqa: B010
    monkeypatch.setattr(paho.mqtt, "__version__", "9.9.9")
    assert paho_tables.install() is False
    assert _packet.Properties is Properties  # type: ignore[attr-defined]


def test_a_socket_is_readable_only_with_bytes_waiting_and_never_once_closed() -> None:
    """What a batch asks before giving the MQTT client another turn (a socket closed under the
    subscriber ends the batch, not the subscriber)."""
    here, there = socket.socketpair()
    try:
        assert _readable(here) is False
        there.sendall(b"\x30")
        assert _readable(here) is True
    finally:
        here.close()
        there.close()
    assert _readable(here) is False
    assert _readable(None) is False
