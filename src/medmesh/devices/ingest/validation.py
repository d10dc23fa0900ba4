"""One reading entry checked and brought to its metric's canonical unit, or refused with a code
and a message that name the field and never echo the value."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medmesh.devices.ingest.vitals import METRICS, Metric

_fromisoformat = datetime.fromisoformat
_READING_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")
FIELDS = frozenset({"device_id", "reading_id", "timestamp", "metric", "value", "unit"})


@dataclass(slots=True)
class Reading:
    """A valid reading in canonical units (a plain dataclass: a batch makes thousands)."""

    device_id: str
    reading_id: str
    ts: datetime
    metric: str
    unit: str
    value: float
    #: Component values of a panel, by name; None for a single value.
    components: dict[str, float] | None


class Refusal(Exception):
    """Why an entry is refused: a machine-readable code and a message naming the field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"Refusal(code={self.code!r}, message={self.message!r})"


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refusal("invalid_value", f"{field}: a number is required")
    number = float(value)
    if not math.isfinite(number):
        raise Refusal("invalid_value", f"{field}: a finite number is required")
    return number


def _timestamp(value: Any, now: datetime, skew: timedelta, earliest: datetime | None) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Refusal("invalid_timestamp", "timestamp: an RFC 3339 date-time is required")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise Refusal("invalid_timestamp", "timestamp: an RFC 3339 date-time is required") from None
    if ts.tzinfo is None:
        raise Refusal("invalid_timestamp", "timestamp: a UTC offset (or Z) is required")
    if ts > now + skew:
        raise Refusal("timestamp_in_future", "timestamp: later than the server's clock allows")
    if earliest is not None and ts < earliest:
        raise Refusal("timestamp_expired", "timestamp: older than the readings this service keeps")
    return ts


@dataclass(frozen=True, slots=True)
class _Unit:
    """A metric read in one of its units: the conversion and the bounds, looked up once."""

    metric: Metric
    to_canonical: Callable[[float], float]
    #: (name, low, high) per component, or one ("value", low, high).
    bounds: tuple[tuple[str, float, float], ...]


_UNITS: dict[tuple[str, str], _Unit] = {
    (metric.name, unit): _Unit(
        metric,
        conversion.to_canonical,
        tuple((name, low, high) for name, (low, high) in metric.bounds.items()),
    )
    for metric in METRICS.values()
    for unit, conversion in metric.units.items()
}


def _implausible(metric: Metric, name: str, low: float, high: float) -> Refusal:
    where = "value" if name == "value" else f"value.{name}"
    return Refusal(
        "implausible_value",
        f"{where}: outside {low:g}-{high:g} {metric.unit} (physiologically implausible)",
    )


def check_entry(
    raw: Any,
    device_id: str | None,
    now: datetime,
    skew: timedelta,
    earliest: datetime | None = None,
) -> Reading:
    """The entry as a :class:`Reading`; raises :class:`Refusal`.

    ``device_id`` is the device of the path (or of the device key); an entry naming another
    device is refused, one naming none belongs to it. A reading older than ``earliest`` (the
    retention's horizon) is refused."""
    if not isinstance(raw, dict):
        raise Refusal("invalid_entry", "an entry is a JSON object")
    if not raw.keys() <= FIELDS:
        unknown = raw.keys() - FIELDS
        raise Refusal("invalid_entry", f"unknown fields: {', '.join(sorted(unknown)[:5])}")
    named = raw.get("device_id")
    if named is None:
        named = device_id
    if not isinstance(named, str) or not _DEVICE_ID.match(named):
        raise Refusal("invalid_device_id", "device_id: a device id is required")
    if device_id is not None and named != device_id:
        raise Refusal("wrong_device", "device_id: not the device these readings are sent for")
    reading_id = raw.get("reading_id")
    if not isinstance(reading_id, str) or not _READING_ID.match(reading_id):
        raise Refusal(
            "invalid_reading_id", "reading_id: 1-128 characters of A-Z a-z 0-9 . _ : - required"
        )
    name = raw.get("metric")
    unit = raw.get("unit")
    try:
        known = _UNITS[name, unit]  # type: ignore[index]  # refused below when not str
    except (KeyError, TypeError):  # TypeError: an unhashable metric or unit (a list, an object)
        metric = METRICS.get(name) if isinstance(name, str) else None
        if metric is None:
            raise Refusal("unknown_metric", f"metric: one of {', '.join(METRICS)}") from None
        raise Refusal(
            "unknown_unit", f"unit: for {metric.name} one of {', '.join(metric.units)} (UCUM)"
        ) from None
    metric = known.metric
    # The common case inline (a batch checks thousands); anything else is refused by the
    # checks that say why.
    stamp = raw.get("timestamp")
    ts = None
    if stamp.__class__ is str and len(stamp) <= 40:
        try:
            ts = _fromisoformat(stamp)
        except ValueError:
            ts = None
    if (
        ts is None
        or ts.tzinfo is None
        or ts > now + skew
        or (earliest is not None and ts < earliest)
    ):
        ts = _timestamp(stamp, now, skew, earliest)
    value: Any = raw.get("value")
    convert = known.to_canonical
    if not metric.components:
        kind = value.__class__
        if (kind is float or kind is int) and math.isfinite(value):
            number = convert(float(value))
        else:
            number = convert(_number(value, "value"))
        _, low, high = known.bounds[0]
        if not low <= number <= high:
            raise _implausible(metric, "value", low, high)
        return Reading(named, reading_id, ts, metric.name, metric.unit, number, None)
    if not isinstance(value, dict) or set(value) != set(metric.components):
        names = ", ".join(metric.components)
        raise Refusal("invalid_value", f"value: an object with {names} is required")
    components = {
        name: convert(_number(value[name], f"value.{name}")) for name in metric.components
    }
    for name, low, high in known.bounds:
        if not low <= components[name] <= high:
            raise _implausible(metric, name, low, high)
    first = next(iter(components.values()))
    return Reading(named, reading_id, ts, metric.name, metric.unit, first, components)
