"""Which bodies orjson may parse alone: the scan for numbers a float cannot give back, against
a plain character-by-character scan, on Synthea's resources and on generated texts."""

from __future__ import annotations

import json
import random

from medmesh.phi.fhir import jsontext
from tests.phi.test_conformance import CONFORMANCE

_DIGITS = frozenset(b"0123456789")
_BEFORE = frozenset(b":[, \t\r\n-")
_AFTER = frozenset(b",]} \t\r\n")


def _plain_scan(data: bytes) -> bool:
    """Every ``.`` followed by a digit, its number's digits found one character at a time."""
    end = len(data)
    for point in range(end - 1):
        if data[point] != ord(".") or data[point + 1] not in _DIGITS:
            continue
        start = point
        while start > 0 and data[start - 1] in _DIGITS:
            start -= 1
        stop = point + 1
        while stop < end and data[stop] in _DIGITS:
            stop += 1
        if start == point or (start > 0 and data[start - 1] not in _BEFORE):
            continue
        if stop < end and data[stop] in b"eE":
            return False
        if stop < end and data[stop] not in _AFTER:
            continue
        text = data[start:stop]
        if repr(float(text)).encode() != text:
            return False
    return True


def test_the_scan_agrees_with_a_plain_scan_on_synthea() -> None:
    lines = [
        json.dumps(entry["resource"]).encode()
        for path in sorted(CONFORMANCE.glob("synthea*/*.json"))
        for entry in json.loads(path.read_text())["entry"]
    ]
    assert len(lines) > 1000
    assert [jsontext._all_floats_exact(line) for line in lines] == [
        _plain_scan(line) for line in lines
    ]


def test_the_scan_agrees_with_a_plain_scan_on_generated_texts() -> None:
    draw = random.Random(18)
    alphabet = b'0123456789....eE-+:,[]{} \n"xZT'
    verdicts = set()
    for _ in range(20_000):
        text = bytes(draw.choice(alphabet) for _ in range(draw.randint(1, 24)))
        verdict = jsontext._all_floats_exact(text)
        assert verdict == _plain_scan(text), text
        verdicts.add(verdict)
    assert verdicts == {True, False}


def test_decimals_that_a_float_loses_are_parsed_exactly() -> None:
    assert str(jsontext.loads(b'{"v": 1.50, "w": [0.1, 2.5]}')["v"]) == "1.50"
    assert jsontext.loads(b'{"v": 1.5, "t": "10:31:40.000Z"}') == {"v": 1.5, "t": "10:31:40.000Z"}
