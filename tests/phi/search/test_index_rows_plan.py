"""Index rows skip the parameters whose elements a resource lacks and read values through
compiled paths; a differential test shows they are exactly the rows of walking every parameter's
paths with :func:`~medmesh.phi.search.extract.walk`, on real third-party data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medmesh.phi.search import extract
from medmesh.phi.search.definitions import INDEXED
from medmesh.phi.search.extract import IndexRows, index_rows, walk
from medmesh.platform.crypto import BlindIndex

CONFORMANCE = Path("/work/shared/conformance")
BLIND = BlindIndex(b"k" * 32, context="medmesh-phi")


def _resources() -> Iterator[dict[str, Any]]:
    for path in sorted(CONFORMANCE.glob("synthea*/*.json")) + sorted(
        (CONFORMANCE / "hl7").glob("*.json")
    ):
        body = json.loads(path.read_text())
        if body.get("resourceType") == "Bundle":
            yield from (e["resource"] for e in body.get("entry", []) if "resource" in e)
        else:
            yield body


def _every_parameter(resource_type: str, resource: dict[str, Any]) -> list[int]:
    return list(range(len(INDEXED.get(resource_type, ()))))


def _walked(value: Any, steps: tuple[tuple[str, bool], ...], at: int, out: list[Any]) -> None:
    path = ".".join(name + "[x]" if choice else name for name, choice in steps[at:])
    out.extend(walk(value, path))


def test_skipping_absent_elements_changes_no_row(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = [r for r in _resources() if r.get("resourceType") in INDEXED]
    planned = [index_rows(r["resourceType"], r, BLIND) for r in resources]
    monkeypatch.setattr(extract, "_chosen", _every_parameter)
    monkeypatch.setattr(extract, "_collect", _walked)
    walked = [index_rows(r["resourceType"], r, BLIND) for r in resources]

    assert len(resources) > 1000
    assert planned == walked
    assert sum(len(rows.tokens) for rows in planned) > 1000
    assert sum(len(rows.dates) for rows in planned) > 1000
    assert sum(len(rows.strings) for rows in planned) > 100


def test_a_choice_element_is_found_by_its_stem() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "effectivePeriod": {"start": "2025-01-02"},
    }
    rows = index_rows("Observation", observation, BLIND)

    assert rows != IndexRows()
    assert [key for key, *_ in rows.dates] == ["date"]
