"""What an MQTT message on a device's topic holds: one reading, or ``{"readings": [...]}``,
every entry the topic's device's (an entry naming another device is refused)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


def device_of_topic(topic_filter: str, topic: str) -> str | None:
    """The level of ``topic`` where ``topic_filter`` has its ``+`` (the device id)."""
    levels = topic.split("/")
    pattern = topic_filter.split("/")
    if "+" not in pattern or len(levels) != len(pattern):
        return None
    return levels[pattern.index("+")] or None


@dataclass
class ParsedMessage:
    """A message's entries (bound to the topic's device), or why the whole message is refused."""

    device_id: str | None
    entries: list[Any] = field(default_factory=list)
    #: Positions of the entries refused here (they name another device).
    refused: list[int] = field(default_factory=list)
    error: str | None = None


def parse_message(topic_filter: str, topic: str, payload: bytes, max_entries: int) -> ParsedMessage:
    device_id = device_of_topic(topic_filter, topic)
    if device_id is None:
        return ParsedMessage(None, error="not_a_device_topic")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ParsedMessage(device_id, error="invalid_json")
    if isinstance(body, dict) and "readings" not in body:
        raw: Any = [body]
    elif isinstance(body, dict) and isinstance(body["readings"], list):
        raw = body["readings"]
    else:
        return ParsedMessage(device_id, error="invalid_request")
    if len(raw) > max_entries:
        return ParsedMessage(device_id, error="batch_too_large")
    parsed = ParsedMessage(device_id)
    for index, entry in enumerate(raw):
        if isinstance(entry, dict) and entry.get("device_id", device_id) != device_id:
            parsed.refused.append(index)
            continue
        parsed.entries.append(
            {**entry, "device_id": device_id} if isinstance(entry, dict) else entry
        )
    return parsed
