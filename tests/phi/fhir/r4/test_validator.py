"""R4 validation as a client sees it: which resources pass, and each problem with its path."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from medmesh.phi.fhir.r4 import Issue, operation_outcome, validate
from tests.phi.fhir.r4.conformance import conformance_resources

OBS: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'
EXTENSION = {"extension": [{"url": "http://example.org/reason", "valueCode": "masked"}]}


def _found(resource: Any) -> list[tuple[str, str, str]]:
    return [(i.code, i.expression, i.diagnostics) for i in validate(resource)]


def test_every_conformance_resource_is_valid_r4() -> None:
    resources = conformance_resources()
    assert len(resources) > 5000
    refused = {name: validate(resource) for name, resource in resources}
    assert {name: issues for name, issues in refused.items() if issues} == {}


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        pytest.param(
            {**OBS, "valueQuantity": {"value": 1, "comparator": "~"}},
            ("code-invalid", "Observation.valueQuantity.comparator"),
            id="bogus code of a nested required binding",
        ),
        pytest.param(
            {"resourceType": "Goal", "lifecycleStatus": "bogus-code", "description": {"text": "x"}}
            | {"subject": {"reference": "Patient/1"}},
            ("code-invalid", "Goal.lifecycleStatus"),
            id="bogus code of a top-level required binding",
        ),
        pytest.param(
            {**OBS, "component": [{"code": {"text": "c"}, "valueQuantity": {"comparator": "~"}}]},
            ("code-invalid", "Observation.component[0].valueQuantity.comparator"),
            id="bogus code two levels down",
        ),
        pytest.param(
            {"resourceType": "Patient", "contact": [{"gender": "banana"}]},
            ("code-invalid", "Patient.contact[0].gender"),
            id="bogus code in a backbone element",
        ),
        pytest.param(
            {"resourceType": "Patient", "identifier": [{"use": "bogus", "value": "1"}]},
            ("code-invalid", "Patient.identifier[0].use"),
            id="bogus code of a data type's required binding",
        ),
        pytest.param(
            {
                "resourceType": "AllergyIntolerance",
                "patient": {"reference": "Patient/1"},
                "clinicalStatus": {"coding": [{"system": "http://example.org", "code": "active"}]},
            },
            ("code-invalid", "AllergyIntolerance.clinicalStatus"),
            id="CodeableConcept with no coding of its required value set",
        ),
        pytest.param(
            {**OBS, "subject": {"reference": "Specimen/x"}},
            ("value", "Observation.subject.reference"),
            id="reference to a type R4 does not allow there",
        ),
        pytest.param(
            {**OBS, "subject": {"reference": "Patient/1", "type": "Specimen"}},
            ("value", "Observation.subject.type"),
            id="Reference.type R4 does not allow there",
        ),
        pytest.param(
            {**OBS, "subject": {"reference": "Banana/1"}},
            ("value", "Observation.subject.reference"),
            id="reference to no resource type",
        ),
        pytest.param(
            {**OBS, "subject": {"reference": "patient 1"}},
            ("value", "Observation.subject.reference"),
            id="reference of no shape R4 allows",
        ),
        pytest.param(
            {
                **OBS,
                "text": {"status": "generated", "div": f"<div {XHTML}><script>x()</script></div>"},
            },
            ("invariant", "Observation.text.div"),
            id="script in the narrative",
        ),
        pytest.param({**OBS, "category": []}, ("structure", "Observation.category"), id="[]"),
        pytest.param({**OBS, "code": {}}, ("structure", "Observation.code"), id="{}"),
        pytest.param({**OBS, "issued": None}, ("structure", "Observation.issued"), id="null"),
        pytest.param(
            {**OBS, "category": [None]}, ("structure", "Observation.category[0]"), id="null entry"
        ),
        pytest.param(
            {"resourceType": "Patient", "gender": ""}, ("structure", "Patient.gender"), id="''"
        ),
        pytest.param(
            {**OBS, "valueString": "a", "valueBoolean": True},
            ("structure", "Observation.valueBoolean"),
            id="two value[x]",
        ),
        pytest.param(
            {"resourceType": "Patient", "name": [{"given": ["a", "b"], "_given": [EXTENSION]}]},
            ("structure", "Patient.name[0]._given"),
            id="misaligned _field",
        ),
        pytest.param(
            {"resourceType": "Patient", "name": [{"family": "a", "_given": [None]}]},
            ("structure", "Patient.name[0]._given[0]"),
            id="_field position empty in both",
        ),
        pytest.param(
            {"resourceType": "Patient", "_birthDate": {"id": "a"}},
            ("invariant", "Patient._birthDate"),
            id="_field with no value and no extension (ele-1)",
        ),
        pytest.param({**OBS, "foo": 1}, ("structure", "Observation.foo"), id="unknown element"),
        pytest.param(
            {**OBS, "code": {"coding": [{"system": 1}]}},
            ("structure", "Observation.code.coding[0].system"),
            id="wrong JSON type",
        ),
        pytest.param(
            {"resourceType": "Patient", "multipleBirthInteger": 1.5},
            ("structure", "Patient.multipleBirthInteger"),
            id="a decimal where R4 wants an integer",
        ),
        pytest.param(
            {**OBS, "effectiveDateTime": "2020-13-01"},
            ("value", "Observation.effectiveDateTime"),
            id="bad date",
        ),
        pytest.param(
            {**OBS, "effectiveDateTime": "2021-02-29"},
            ("value", "Observation.effectiveDateTime"),
            id="no such day",
        ),
        pytest.param(
            {"resourceType": "Observation", "code": {"text": "x"}},
            ("required", "Observation.status"),
            id="missing required status",
        ),
        pytest.param(
            {"resourceType": "MedicationRequest", "status": "active", "intent": "order"}
            | {"subject": {"reference": "Patient/1"}},
            ("required", "MedicationRequest.medication[x]"),
            id="missing required choice",
        ),
        pytest.param(
            {"resourceType": "Patient", "maritalStatus": {"id": "a"}},
            ("invariant", "Patient.maritalStatus"),
            id="element with no value and no children (ele-1)",
        ),
        pytest.param(
            {"resourceType": "Patient", "extension": [{"url": "http://example.org/x"}]},
            ("invariant", "Patient.extension[0]"),
            id="extension with neither value nor extensions (ext-1)",
        ),
        pytest.param(
            {
                **OBS,
                "contained": [
                    {"resourceType": "Patient", "contained": [{"resourceType": "Patient"}]}
                ],
            },
            ("invariant", "Observation.contained[0].contained"),
            id="contained resource containing one (dom-2)",
        ),
        pytest.param(
            {**OBS, "contained": [{"resourceType": "Patient", "gender": "banana"}]},
            ("code-invalid", "Observation.contained[0].gender"),
            id="a contained resource's own error",
        ),
        pytest.param(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {**OBS, "foo": 1}}],
            },
            ("structure", "Bundle.entry[0].resource.foo"),
            id="a Bundle entry's unknown element",
        ),
        pytest.param({"resourceType": "Banana"}, ("not-supported", "Resource"), id="no R4 type"),
    ],
)
def test_an_invalid_resource_is_refused_at_its_element(
    resource: dict[str, Any], expected: tuple[str, str]
) -> None:
    found = _found(resource)
    assert [(code, where) for code, where, _ in found] == [expected]
    _, where, diagnostics = found[0]
    assert diagnostics.startswith(f"{where}: ")


def test_several_problems_are_reported_at_once() -> None:
    resource = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": 1}]},
        "valueQuantity": {"value": 1, "comparator": "~"},
        "subject": {"reference": "Specimen/x"},
        "category": [],
        "foo": True,
    }
    assert sorted((code, where) for code, where, _ in _found(resource)) == [
        ("code-invalid", "Observation.valueQuantity.comparator"),
        ("required", "Observation.status"),
        ("structure", "Observation.category"),
        ("structure", "Observation.code.coding[0].system"),
        ("structure", "Observation.foo"),
        ("value", "Observation.subject.reference"),
    ]


def test_diagnostics_never_repeat_the_submitted_value() -> None:
    secret = "Jane-Doe-555-0100"
    resource = {
        "resourceType": "Patient",
        "gender": secret,
        "birthDate": secret,
        "active": secret,
        "name": [{"family": 7, "given": [secret]}],
        "telecom": [{"system": secret, "value": secret}],
        secret: 1,
    }
    issues = validate(resource)
    assert len(issues) >= 5
    assert all(secret not in issue.diagnostics for issue in issues)


def test_a_null_aligned_with_its_extension_is_valid() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"given": [None, "b"], "_given": [EXTENSION, None]}],
    }
    assert validate(patient) == []


def test_a_primitive_carried_by_its_extension_alone_satisfies_a_required_element() -> None:
    observation = {"resourceType": "Observation", "_status": EXTENSION, "code": {"text": "x"}}
    assert validate(observation) == []


def test_decimals_parsed_as_decimal_keep_their_precision_and_validate() -> None:
    text = (
        '{"resourceType": "Observation", "status": "final", "code": {"text": "x"},'
        ' "valueQuantity": {"value": 1.50}}'
    )
    resource = json.loads(text, parse_float=Decimal)
    assert validate(resource) == []
    assert str(resource["valueQuantity"]["value"]) == "1.50"
    # A float parser has already lost the precision: the validator sees 1.5.
    assert json.loads(text)["valueQuantity"]["value"] == 1.5


def test_every_r4_resource_type_is_known() -> None:
    for resource_type in ("Specimen", "Endpoint", "FamilyMemberHistory", "Composition", "Task"):
        assert validate({"resourceType": resource_type, "status": "x"}) != [
            Issue("error", "not-supported", "Resource", "Resource: not a resource type of FHIR R4")
        ]
    assert (
        validate(
            {
                "resourceType": "Endpoint",
                "status": "active",
                "payloadType": [{"text": "x"}],
                "connectionType": {
                    "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                    "code": "hl7-fhir-rest",
                },
                "address": "https://example.org/fhir",
            }
        )
        == []
    )


def test_the_issues_read_as_an_operation_outcome() -> None:
    outcome = operation_outcome(validate({**OBS, "category": []}))
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "structure",
                "diagnostics": "Observation.category: empty array",
                "expression": ["Observation.category"],
            }
        ],
    }
    assert validate(outcome) == []
    assert validate(operation_outcome([])) == []


def test_validation_leaves_the_resource_as_it_was() -> None:
    resource = {**OBS, "valueQuantity": {"value": Decimal("1.50")}, "category": []}
    before = copy.deepcopy(resource)
    validate(resource)
    assert resource == before


@pytest.mark.parametrize(
    ("date", "valid"),
    [
        ("2020-02-29", True),
        ("2000-02-29", True),
        ("1900-02-29", False),
        ("2021-02-29", False),
        ("2021-01-31", True),
        ("2021-04-31", False),
        ("2021-04-30T10:00:00Z", True),
        ("2021-06-31T10:00:00+02:00", False),
        ("2021-12-28", True),
    ],
)
def test_a_day_is_checked_against_its_months_length(date: str, valid: bool) -> None:
    issues = validate({**OBS, "effectiveDateTime": date})
    assert (not issues) is valid
    if not valid:
        assert [i.diagnostics for i in issues] == [
            "Observation.effectiveDateTime: not a valid dateTime (no such day)"
        ]
