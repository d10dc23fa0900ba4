"""Every R4 resource type is stored, read and searched, each in its R4 Patient compartment."""

from __future__ import annotations

from typing import Any

import pytest

from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.types import R4_RESOURCE_TYPES, SUPPORTED_TYPES
from medmesh.phi.search.definitions import parameters_of
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import patient


def _examples(patient_id: str) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{patient_id}"}
    return [
        {
            "resourceType": "Specimen",
            "status": "available",
            "type": {"text": "blood"},
            "subject": subject,
        },
        {
            "resourceType": "Endpoint",
            "status": "active",
            "connectionType": {
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "code": "hl7-fhir-rest",
            },
            "payloadType": [{"text": "any"}],
            "address": "https://fhir.example.org/r4",
        },
        {
            "resourceType": "FamilyMemberHistory",
            "status": "completed",
            "patient": subject,
            "relationship": {"text": "mother"},
        },
        {
            "resourceType": "Composition",
            "status": "final",
            "type": {"text": "discharge summary"},
            "subject": subject,
            "date": "2024-05-01",
            "author": [{"reference": "Practitioner/pr1"}],
            "title": "Discharge",
        },
    ]


def test_every_r4_type_but_the_messages_and_phis_own_audit_events_is_stored() -> None:
    assert len(R4_RESOURCE_TYPES) == 146
    assert {"AuditEvent", "OperationOutcome", "Parameters"} == R4_RESOURCE_TYPES - SUPPORTED_TYPES


@pytest.mark.parametrize("resource_type", sorted(SUPPORTED_TYPES))
def test_every_type_searches_by_id_and_last_updated(resource_type: str) -> None:
    assert {"_id", "_lastUpdated"} <= set(parameters_of(resource_type))


def test_compartment_types_search_by_patient() -> None:
    for resource_type in ("Specimen", "FamilyMemberHistory", "Composition", "Appointment"):
        assert parameters_of(resource_type)["patient"].target == ("Patient",)


def test_nested_compartment_elements_place_a_resource() -> None:
    appointment = {
        "resourceType": "Appointment",
        "participant": [
            {"actor": {"reference": "Practitioner/pr1"}},
            {"actor": {"reference": "Patient/p9"}},
        ],
    }
    assert compartment_patient(appointment) == "p9"
    assert compartment_patient({"resourceType": "Endpoint", "address": "https://x.org"}) is None


async def test_types_beyond_the_first_thirty_are_created_read_and_searched(
    phi: PhiHarness,
) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    headers = phi.headers()
    for resource in _examples(owner):
        kind = resource["resourceType"]
        created = await phi.create(resource)
        read = await phi.http.get(f"/fhir/{kind}/{created['id']}", headers=headers)
        assert read.status_code == 200, read.text
        assert read.json() == created
        found = await phi.http.get(f"/fhir/{kind}", params={"_id": created["id"]}, headers=headers)
        assert found.status_code == 200, found.text
        assert [e["resource"]["id"] for e in found.json()["entry"]] == [created["id"]]
        if kind != "Endpoint":
            by_patient = await phi.http.get(
                f"/fhir/{kind}", params={"patient": owner}, headers=headers
            )
            assert [e["resource"]["id"] for e in by_patient.json()["entry"]] == [created["id"]]


async def test_a_patient_token_sees_its_own_specimen_and_not_anothers(phi: PhiHarness) -> None:
    mine = (await phi.create(patient("Alpha")))["id"]
    theirs = (await phi.create(patient("Beta")))["id"]
    my_specimen = await phi.create(_examples(mine)[0])
    their_specimen = await phi.create(_examples(theirs)[0])
    token = phi.headers("patient/*.rs", patient=mine, roles=["patient"], sub="patient-user")

    own = await phi.http.get(f"/fhir/Specimen/{my_specimen['id']}", headers=token)
    assert own.status_code == 200, own.text
    other = await phi.http.get(f"/fhir/Specimen/{their_specimen['id']}", headers=token)
    assert other.status_code == 403, other.text
    assert other.json()["issue"][0]["code"] == "forbidden"
    searched = await phi.http.get("/fhir/Specimen", headers=token)
    assert searched.status_code == 200, searched.text
    assert [e["resource"]["id"] for e in searched.json()["entry"]] == [my_specimen["id"]]


async def test_a_patient_token_reads_reference_data_but_not_private_types(
    phi: PhiHarness,
) -> None:
    mine = (await phi.create(patient("Alpha")))["id"]
    endpoint = await phi.create(_examples(mine)[1])
    task = await phi.create(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "for": {"reference": f"Patient/{mine}"},
        }
    )
    binary = await phi.create({"resourceType": "Binary", "contentType": "text/plain"})
    token = phi.headers("patient/*.rs", patient=mine, roles=["patient"], sub="patient-user")

    shared = await phi.http.get(f"/fhir/Endpoint/{endpoint['id']}", headers=token)
    assert shared.status_code == 200, shared.text
    for kind, stored in (("Task", task), ("Binary", binary)):
        refused = await phi.http.get(f"/fhir/{kind}/{stored['id']}", headers=token)
        assert refused.status_code == 403, refused.text
