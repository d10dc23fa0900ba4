"""FHIR JSON in and out with decimals kept as written (R4 §2.6.2: ``1.50`` stays ``1.50``).

orjson parses a body unless it may hold a number a float cannot give back as written (a
fraction ending in zero, a long or a tiny one, an exponent); such a body is
parsed again by the standard library, each such number becoming a :class:`decimal.Decimal`
(every other number stays a float, so the resource looks the same to the code that reads it).
:func:`dumps` writes a Decimal back as the number it was, digit for digit. Not looked for: an
exponent on a number without a fraction (``1e5`` comes back as ``100000.0``, the same value).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

#: A decimal point and the digits after it: where a number with a fraction may be.
_POINT = re.compile(rb"\.\d+")
_DIGITS = frozenset(b"0123456789")
_BEFORE = frozenset(b":[, \t\r\n-")
_AFTER = frozenset(b",]} \t\r\n")


def _all_floats_exact(data: bytes) -> bool:
    """Whether every number of ``data`` with a fraction is written as a float writes it back
    (``1.5``, ``28.104000000000003``), so orjson's parse loses nothing; False at the first one
    that is not (``1.50``, ``0.00001``, ``3.14159265358979323846``, ``1.5e2``). Text inside a
    string that looks like a number only costs the slower parse."""
    end = len(data)
    for found in _POINT.finditer(data):
        point, stop = found.span()
        start = point
        while start > 0 and data[start - 1] in _DIGITS:
            start -= 1
        if start == point or (start > 0 and data[start - 1] not in _BEFORE):
            continue  # ".5" or "v2.5": not a JSON number
        if stop < end and data[stop] in b"eE":
            return False
        if stop < end and data[stop] not in _AFTER:
            continue  # "10:31:40.000Z": inside a string
        text = data[start:stop]
        if repr(float(text)).encode() != text:
            return False
    return True


def _number(text: str) -> float | Decimal:
    """A float when it writes back as ``text``, else the exact Decimal."""
    value = float(text)
    return value if repr(value) == text else Decimal(text)


def loads(data: bytes) -> Any:
    """The parsed JSON ``data``, decimals kept (raises ``orjson.JSONDecodeError``, a
    ``ValueError``, when it is not JSON)."""
    parsed = orjson.loads(data)
    if _all_floats_exact(data):
        return parsed
    return json.loads(data, parse_float=_number)


def _exact(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> bytes:
    """``value`` as JSON, a :class:`~decimal.Decimal` written as the number it holds."""
    return orjson.dumps(value, default=_exact)
