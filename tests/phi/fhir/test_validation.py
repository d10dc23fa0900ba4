"""Resource validation: strings that pydantic's lax mode would turn into booleans or numbers;
the depth guard's walk that also finds the references to canonicalise, against the plain path."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.r4 import shared_validator
from medmesh.phi.fhir.references import LocalBases, canonicalize_references, reference_holders
from medmesh.phi.fhir.validation import check_envelope, invalid, json_depth, validate_resource
from tests.phi.conftest import BASE
from tests.phi.test_conformance import CONFORMANCE

OBS: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}


@pytest.mark.parametrize(
    ("resource", "element"),
    [
        ({"resourceType": "Patient", "active": "true"}, "Patient.active"),
        ({"resourceType": "Patient", "multipleBirthInteger": "2"}, "Patient.multipleBirthInteger"),
        ({**OBS, "valueQuantity": {"value": "12"}}, "Observation.valueQuantity.value"),
        (
            {**OBS, "component": [{"code": {"text": "c"}, "valueQuantity": {"value": "1.5"}}]},
            "Observation.component[0].valueQuantity.value",
        ),
        (
            {"resourceType": "Patient", "contained": [{"resourceType": "Patient", "active": "no"}]},
            "Patient.contained[0].active",
        ),
    ],
)
def test_a_string_where_fhir_wants_a_boolean_or_a_number_is_refused(
    resource: dict[str, Any], element: str
) -> None:
    with pytest.raises(InvalidResource) as refused:
        validate_resource(resource)
    assert refused.value.message.startswith(f"{element}: wrong JSON type")
    assert refused.value.extra["issue_code"] == "structure"
    assert refused.value.extra["expression"] == [element]


def test_strings_that_look_like_numbers_stay_valid_where_fhir_wants_strings() -> None:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        "valueString": "12",
        "note": [{"text": "true"}],
    }
    assert validate_resource(resource) == "Observation"


def test_every_synthea_resource_is_valid() -> None:
    bundles = sorted(CONFORMANCE.glob("synthea*/*.json"))
    assert bundles
    for path in bundles:
        for entry in json.loads(path.read_text())["entry"]:
            validate_resource(entry["resource"])


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        ("x", 1),
        ({}, 1),
        ([], 1),
        ({"a": 1}, 2),
        ({"a": {}}, 2),
        ({"a": [1, {"b": [True]}], "c": None}, 5),
        ([[[[[]]]]], 5),
    ],
)
def test_json_depth_counts_levels(value: object, depth: int) -> None:
    assert json_depth(value, 64) == depth
    assert json_depth(value, depth) == depth
    assert json_depth(value, depth - 1) > depth - 1


def test_json_depth_stops_early_however_deep_the_value() -> None:
    deep: list[object] = []
    for _ in range(20_000):  # far beyond the interpreter's recursion limit
        deep = [deep]
    assert json_depth(deep, 64) == 65


def _plain(resource: Any, bases: LocalBases) -> str:
    """The plain path: the guards, then a walk of its own to canonicalise, then R4."""
    resource_type = check_envelope(resource)
    canonicalize_references(resource, resource_type, lambda: bases)
    issues = shared_validator().validate(resource)
    if issues:
        raise invalid(issues)
    return resource_type


def _outcome(check: Any, resource: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return ("stored", check(resource), resource)
    except InvalidResource as exc:
        return ("refused", exc.message, exc.extra)


def _spelt(n: int, ids: dict[str, str], spellings: list[str], match: re.Match[str]) -> str:
    return json.dumps(spellings[(n + match.start()) % 3].format(ids[match[1]]))


def _with_references(count: int) -> Iterator[dict[str, Any]]:
    """Synthea resources with ``urn:uuid:`` references made local (relative, absolute under
    this server, absolute elsewhere) and, every third one, spoilt in two places."""
    bad = ["Patient//x", "patient/x", f"{BASE}/Nothing/x", "Patient/x?y", " Patient/x"]
    spellings = ["{}", BASE + "/{}", "http://other.example.org/fhir/{}"]
    for n, path in enumerate(sorted(CONFORMANCE.glob("synthea*/*.json"))[:count]):
        text = path.read_text()
        ids = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'][9:].replace('-', '')}"
            for e in json.loads(text)["entry"]
        }
        text = re.sub(r'"(urn:uuid:[0-9a-f-]{36})"', partial(_spelt, n, ids, spellings), text)
        for i, entry in enumerate(json.loads(text)["entry"]):
            resource = entry["resource"]
            holders = [h for h, _ in reference_holders(resource, "R")]
            if i % 3 == 0 and len(holders) >= 2:
                holders[0]["reference"] = bad[i % len(bad)]
                holders[-1]["reference"] = bad[(i + 1) % len(bad)]
            yield resource


def test_canonicalising_in_the_depth_walk_is_the_plain_path() -> None:
    bases = LocalBases(BASE)
    refused = stored = 0
    for resource in _with_references(6):
        plain = _outcome(lambda r: _plain(r, bases), copy.deepcopy(resource))
        merged = _outcome(
            lambda r: validate_resource(r, bases=lambda: bases), copy.deepcopy(resource)
        )
        assert merged == plain
        refused += plain[0] == "refused"
        stored += plain[0] == "stored"
    assert refused > 50
    assert stored > 100
