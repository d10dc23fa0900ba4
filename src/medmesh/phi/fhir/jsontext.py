"""FHIR JSON in and out with decimals kept as written (R4 §2.6.2: ``1.50`` stays ``1.50``).

orjson parses a body unless it may hold a number a float cannot give back as written (a
fraction ending in zero, an exponent, more than 15 digits, a tiny fraction); such a body is
parsed again by the standard library, each such number becoming a :class:`decimal.Decimal`
(every other number stays a float, so the resource looks the same to the code that reads it).
:func:`dumps` writes a Decimal back as the number it was, digit for digit.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

#: A JSON number (after ``:``, ``[`` or ``,``) that a float may not write back as it was
#: written; a string holding the same text only costs the slower parse.
_INEXACT = re.compile(
    rb"[:\[,]\s*-?\d+(?:\.\d*0\s*[,\]}]|(?:\.\d+)?[eE])"
    rb"|[:\[,]\s*-?[\d.]{17,}"
    rb"|[:\[,]\s*-?0\.000"
)


def _number(text: str) -> float | Decimal:
    """A float when it writes back as ``text``, else the exact Decimal."""
    value = float(text)
    return value if repr(value) == text else Decimal(text)


def loads(data: bytes) -> Any:
    """The parsed JSON ``data``, decimals kept (raises ``orjson.JSONDecodeError``, a
    ``ValueError``, when it is not JSON)."""
    parsed = orjson.loads(data)
    if _INEXACT.search(data) is None:
        return parsed
    return json.loads(data, parse_float=_number)


def _exact(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> bytes:
    """``value`` as JSON, a :class:`~decimal.Decimal` written as the number it holds."""
    return orjson.dumps(value, default=_exact)
