"""A fast path for decoding MQTT v5 packets with paho-mqtt.

paho builds a ``Properties`` object for every v5 packet it decodes, and its constructor builds
the same three lookup tables (property names, types and the packets each may appear in) anew
each time; a profile of MQTT ingest found a quarter of its time there (decision 0037).
:class:`SharedTableProperties` is paho's class with those tables built once per packet type and
shared; paho only reads them. :func:`install` puts it where paho's packet decoder looks for
``Properties`` (for every packet it decodes; PUBLISH is the one that counts), and refuses,
changing nothing, unless paho is a version whose class it was checked against and the decoder
still uses paho's own class. A differential test decodes the same packets both ways."""

from __future__ import annotations

from typing import Any, ClassVar

import paho.mqtt
from paho.mqtt import _packet
from paho.mqtt.properties import Properties

#: The paho-mqtt versions whose ``Properties.__init__`` sets only the shared tables and
#: ``packetType``.
CHECKED_VERSIONS = frozenset({"2.2.0"})


class SharedTableProperties(Properties):
    """paho's ``Properties`` with its lookup tables built once per packet type."""

    _tables: ClassVar[dict[int, tuple[Any, Any, Any]]] = {}

    def __init__(self, packetType: int) -> None:
        tables = self._tables.get(packetType)
        if tables is None:
            built = Properties(packetType)  # type: ignore[no-untyped-call]
            tables = (built.types, built.names, built.properties)
            self._tables[packetType] = tables
        self.packetType = packetType
        self.types, self.names, self.properties = tables


def install() -> bool:
    """Decode PUBLISH packets with :class:`SharedTableProperties`; whether it is in place."""
    current = getattr(_packet, "Properties", None)
    if current is SharedTableProperties:
        return True
    if paho.mqtt.__version__ not in CHECKED_VERSIONS or current is not Properties:
        return False
    setattr(_packet, "Properties", SharedTableProperties)  # noqa: B010 - not exported by paho
    return True
