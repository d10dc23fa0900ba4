"""The references of a Bundle's resources: every holder of a string ``reference`` is found, in
the order of a plain walk, on the Synthea bundles and on hand-made shapes."""

from __future__ import annotations

import json
from typing import Any

from medmesh.phi.bundles.references import reference_holders
from tests.phi.test_conformance import CONFORMANCE


def _plain(resource: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack: list[Any] = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                found.append(node)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return found


def test_the_holders_are_those_of_a_plain_walk_in_its_order() -> None:
    resources = [
        entry["resource"]
        for path in sorted(CONFORMANCE.glob("synthea*/*.json"))
        for entry in json.loads(path.read_text())["entry"]
    ]
    resources.append(
        {
            "resourceType": "Observation",
            "subject": {"reference": "Patient/a"},
            "extension": [{"valueReference": {"reference": "urn:uuid:x"}}, [[{"reference": 1}]]],
            "contained": [{"resourceType": "Patient", "link": [{"other": {"reference": "#p"}}]}],
            "focus": [{"reference": None}, {"display": "none"}],
        }
    )
    resources += [[{"reference": "Patient/a"}, {"x": {"reference": "Patient/b"}}], "text", None]
    found = [[id(h) for h in reference_holders(r)] for r in resources]
    assert found == [[id(h) for h in _plain(r)] for r in resources]
    assert sum(len(f) for f in found) > 1000
    assert [len(f) for f in found[-4:]] == [3, 2, 0, 0]
