"""Every resource of a 1,000-patient sample is valid FHIR R4B (fhir.resources), including the
required bindings the models do not check, and every reference resolves."""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Any, Literal

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class

from medmesh.synthetic.engine import GenerationOptions, PatientGenerator
from medmesh.synthetic.engine.catalog.terminology import SYNTHETIC_TAG

OPTIONS = GenerationOptions(seed=1000, size=1000, reference_date=date(2025, 6, 30))
CHUNKS = 10  # 100 patients per test keeps each test well inside the timeout

_EVENT = {
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "entered-in-error",
    "unknown",
}
#: (resource type, path) -> the codes of the required binding (FHIR R4).
REQUIRED: dict[tuple[str, str], set[str]] = {
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
    ("Practitioner", "gender"): {"male", "female", "other", "unknown"},
    ("Observation", "status"): {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    ("DiagnosticReport", "status"): {
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    ("Encounter", "status"): {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    ("Encounter", "class.code"): {"AMB", "EMER", "IMP", "HH", "VR", "OBSENC", "SS", "ACUTE"},
    ("Procedure", "status"): _EVENT,
    ("Immunization", "status"): {"completed", "entered-in-error", "not-done"},
    ("MedicationRequest", "status"): {
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    },
    ("MedicationRequest", "intent"): {
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    },
    ("Condition", "clinicalStatus.coding.code"): {
        "active",
        "recurrence",
        "relapse",
        "inactive",
        "remission",
        "resolved",
    },
    ("Condition", "verificationStatus.coding.code"): {
        "unconfirmed",
        "provisional",
        "differential",
        "confirmed",
        "refuted",
        "entered-in-error",
    },
    ("AllergyIntolerance", "clinicalStatus.coding.code"): {"active", "inactive", "resolved"},
    ("AllergyIntolerance", "verificationStatus.coding.code"): {
        "unconfirmed",
        "confirmed",
        "refuted",
        "entered-in-error",
    },
    ("AllergyIntolerance", "type"): {"allergy", "intolerance"},
    ("AllergyIntolerance", "category"): {"food", "medication", "environment", "biologic"},
    ("AllergyIntolerance", "criticality"): {"low", "high", "unable-to-assess"},
    ("Location", "status"): {"active", "suspended", "inactive"},
    ("Patient", "telecom.system"): {"phone", "fax", "email", "pager", "url", "sms", "other"},
    ("Patient", "address.use"): {"home", "work", "temp", "old", "billing"},
    ("Patient", "name.use"): {
        "usual",
        "official",
        "temp",
        "nickname",
        "anonymous",
        "old",
        "maiden",
    },
}
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?")


def values_at(node: Any, path: list[str]) -> list[Any]:
    if not path:
        return node if isinstance(node, list) else [node]
    items = node if isinstance(node, list) else [node]
    found = []
    for item in items:
        if isinstance(item, dict) and path[0] in item:
            found += values_at(item[path[0]], path[1:])
    return found


def check_resource(resource: dict[str, Any]) -> None:
    resource_type = resource["resourceType"]
    get_fhir_model_class(resource_type).model_validate(resource)
    assert _ID.fullmatch(resource["id"])
    assert SYNTHETIC_TAG in resource["meta"]["tag"]
    for (rtype, path), codes in REQUIRED.items():
        if rtype == resource_type:
            for value in values_at(resource, path.split(".")):
                assert value in codes, (resource_type, path, value)
    for key in (
        "effectiveDateTime",
        "onsetDateTime",
        "occurrenceDateTime",
        "authoredOn",
        "performedDateTime",
        "abatementDateTime",
        "recordedDate",
        "deceasedDateTime",
    ):
        if key in resource:
            assert _DATETIME.fullmatch(resource[key]), (key, resource[key])
    if "birthDate" in resource:
        assert _DATE.fullmatch(resource["birthDate"])


@cache
def generator() -> PatientGenerator:
    return PatientGenerator(OPTIONS)


def test_the_directory_is_valid_fhir() -> None:
    directory = generator().directory()
    assert {r["resourceType"] for r in directory} == {
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
    }
    for resource in directory:
        check_resource(resource)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_resource_of_a_1000_patient_sample_is_valid_fhir(chunk: int) -> None:
    run = generator()
    directory = {f"{r['resourceType']}/{r['id']}" for r in run.directory()}
    step = OPTIONS.size // CHUNKS
    for index in range(chunk * step, (chunk + 1) * step):
        references: Literal["plain", "urn"] = "urn" if index % 2 else "plain"
        patient = run.patient(index, references)
        assert patient.resources[0]["resourceType"] == "Patient"
        assert patient.resources[0]["id"] == patient.patient_id
        own = {
            (f"urn:uuid:{r['id']}" if references == "urn" else f"{r['resourceType']}/{r['id']}")
            for r in patient.resources
        }
        for resource in patient.resources:
            check_resource(resource)
        found = re.findall(rb'"reference":"([^"]+)"', orjson.dumps(patient.resources))
        for reference in found:
            assert reference.decode() in own | directory, reference


def test_a_sample_has_the_resource_types_of_a_full_record() -> None:
    run = generator()
    types: dict[str, int] = {}
    for index in range(100):
        for resource in run.patient(index).resources:
            types[resource["resourceType"]] = types.get(resource["resourceType"], 0) + 1
    assert set(types) == {
        "Patient",
        "Encounter",
        "Observation",
        "Condition",
        "MedicationRequest",
        "Immunization",
        "Procedure",
        "AllergyIntolerance",
        "DiagnosticReport",
    }
    assert sum(types.values()) / 100 >= 50
