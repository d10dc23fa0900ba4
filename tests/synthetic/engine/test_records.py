"""What a patient's record holds: vital signs, labs, growth, immunizations, medications."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

from medmesh.synthetic.engine import Cohort, GenerationOptions, PatientGenerator
from medmesh.synthetic.engine.catalog.conditions import CONDITIONS

REFERENCE = date(2025, 6, 30)
VITALS = {
    "85354-9": None,
    "8867-4": "/min",
    "9279-1": "/min",
    "8310-5": "Cel",
    "59408-5": "%",
    "8302-2": "cm",
    "29463-7": "kg",
    "39156-5": "kg/m2",
}
LABS = {
    "4548-4": "%",
    "2345-7": "mg/dL",
    "2093-3": "mg/dL",
    "2085-9": "mg/dL",
    "13457-7": "mg/dL",
    "2571-8": "mg/dL",
    "2160-0": "mg/dL",
    "98979-8": "mL/min/{1.73_m2}",
}


@cache
def sample() -> list[list[dict[str, Any]]]:
    options = GenerationOptions(
        seed=99,
        size=400,
        reference_date=REFERENCE,
        cohorts=(Cohort("diabetes", 40), Cohort("hypertension", 40)),
    )
    generator = PatientGenerator(options)
    return [generator.patient(i).resources for i in range(options.size)]


def of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == resource_type]


def loinc(observation: dict[str, Any]) -> str:
    return str(observation["code"]["coding"][0]["code"])


def test_vital_signs_carry_loinc_codes_ucum_units_and_the_vital_signs_category() -> None:
    seen = set()
    for resources in sample():
        for observation in of_type(resources, "Observation"):
            code = loinc(observation)
            category = observation["category"][0]["coding"][0]["code"]
            if code in VITALS:
                seen.add(code)
                assert category == "vital-signs"
                quantity = observation.get("valueQuantity")
                if VITALS[code] is not None:
                    assert quantity is not None
                    assert quantity["system"] == "http://unitsofmeasure.org"
                    assert quantity["code"] == VITALS[code]
            else:
                assert category == "laboratory"
                assert observation["valueQuantity"]["code"] == LABS[code]
                seen.add(code)
    assert seen == set(VITALS) | set(LABS)


def test_blood_pressure_is_a_panel_with_systolic_and_diastolic_components() -> None:
    for resources in sample()[:50]:
        for observation in of_type(resources, "Observation"):
            if loinc(observation) == "85354-9":
                systolic, diastolic = observation["component"]
                assert systolic["code"]["coding"][0]["code"] == "8480-6"
                assert diastolic["code"]["coding"][0]["code"] == "8462-4"
                assert systolic["valueQuantity"]["value"] > diastolic["valueQuantity"]["value"]


def test_lab_panels_are_reported_with_their_results() -> None:
    reports = [r for resources in sample() for r in of_type(resources, "DiagnosticReport")]
    assert {r["code"]["coding"][0]["code"] for r in reports} == {"57698-3", "51990-0"}
    assert all(len(r["result"]) in (3, 4) for r in reports)


def test_children_grow_between_visits() -> None:
    checked = 0
    for resources in sample():
        patient = resources[0]
        if patient["birthDate"] < "2015-01-01":
            continue
        heights = [
            (o["effectiveDateTime"], o["valueQuantity"]["value"])
            for o in of_type(resources, "Observation")
            if loinc(o) == "8302-2"
        ]
        heights.sort()
        if len(heights) >= 3:
            checked += 1
            assert heights[-1][1] > heights[0][1] + 10
    assert checked > 10


def test_infants_get_their_vaccines_on_schedule() -> None:
    found = 0
    for resources in sample():
        birth = date.fromisoformat(resources[0]["birthDate"])
        for immunization in of_type(resources, "Immunization"):
            code = immunization["vaccineCode"]["coding"][0]
            assert code["system"] == "http://hl7.org/fhir/sid/cvx"
            given = date.fromisoformat(immunization["occurrenceDateTime"][:10])
            age_days = (given - birth).days
            if code["code"] == "03":  # MMR: 12-15 months or 4-6 years
                found += 1
                assert 330 <= age_days <= 6.5 * 366
            if code["code"] == "187":  # recombinant zoster: 50 and over
                assert age_days >= 50 * 365
    assert found > 5


def test_medications_follow_conditions() -> None:
    drugs_for = {key: {code for code, _ in spec.medications} for key, spec in CONDITIONS.items()}
    codes = {key: spec.snomed[0] for key, spec in CONDITIONS.items()}
    checked = 0
    for resources in sample():
        conditions = {
            f"Condition/{c['id']}": c["code"]["coding"][0]["code"]
            for c in of_type(resources, "Condition")
        }
        for request in of_type(resources, "MedicationRequest"):
            rxnorm = request["medicationCodeableConcept"]["coding"][0]
            assert rxnorm["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
            reason = conditions[request["reasonReference"][0]["reference"]]
            key = next(k for k, code in codes.items() if code == reason)
            assert rxnorm["code"] in drugs_for[key]
            checked += 1
    assert checked > 100


def test_conditions_carry_snomed_and_icd10_codings() -> None:
    for resources in sample()[:100]:
        for condition in of_type(resources, "Condition"):
            systems = [c["system"] for c in condition["code"]["coding"]]
            assert systems == ["http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"]
            assert condition["recordedDate"] >= condition["onsetDateTime"][:10]


def test_encounters_name_their_practitioner_organization_and_location() -> None:
    generator = PatientGenerator(GenerationOptions(seed=99, size=400, reference_date=REFERENCE))
    directory = {f"{r['resourceType']}/{r['id']}" for r in generator.directory()}
    kinds = set()
    for resources in sample():
        for encounter in of_type(resources, "Encounter"):
            kinds.add(encounter["type"][0]["coding"][0]["code"])
            assert encounter["participant"][0]["individual"]["reference"] in directory
            assert encounter["serviceProvider"]["reference"] in directory
            assert encounter["location"][0]["location"]["reference"] in directory
            assert encounter["period"]["start"] < encounter["period"]["end"]
    # wellness (child and adult), follow-up, emergency
    assert {"410620009", "162673000", "390906007", "50849002"} <= kinds


def test_every_patient_record_starts_with_the_patient() -> None:
    for resources in sample():
        patient = resources[0]
        assert patient["resourceType"] == "Patient"
        reference = f"Patient/{patient['id']}"
        for resource in resources[1:]:
            subject = resource.get("subject") or resource.get("patient")
            assert subject is not None, resource["resourceType"]
            assert subject["reference"] == reference
