"""Resource validation: strings that pydantic's lax mode would turn into booleans or numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.validation import json_depth, validate_resource
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
