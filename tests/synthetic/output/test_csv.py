"""CSV tables like Synthea's: headers, one row per record, keys that join with the FHIR output."""

from __future__ import annotations

import csv
from typing import Any

from tests.synthetic.output.conftest import Run

SYNTHEA_HEADERS = {
    "patients": "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,"
    "MARITAL,RACE,ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON",
    "encounters": "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,ENCOUNTERCLASS,CODE,DESCRIPTION,"
    "REASONCODE,REASONDESCRIPTION",
    "conditions": "START,STOP,PATIENT,ENCOUNTER,SYSTEM,CODE,DESCRIPTION",
    "observations": "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE",
    "medications": "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,REASONCODE,REASONDESCRIPTION",
    "immunizations": "DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION",
    "allergies": "START,STOP,PATIENT,ENCOUNTER,CODE,SYSTEM,DESCRIPTION,TYPE,CATEGORY,REACTION1,"
    "DESCRIPTION1,SEVERITY1,REACTION2,DESCRIPTION2,SEVERITY2",
    "procedures": "START,STOP,PATIENT,ENCOUNTER,SYSTEM,CODE,DESCRIPTION,REASONCODE,"
    "REASONDESCRIPTION",
}
TABLE_OF = {
    "Patient": "patients",
    "Encounter": "encounters",
    "Condition": "conditions",
    "MedicationRequest": "medications",
    "Immunization": "immunizations",
    "AllergyIntolerance": "allergies",
    "Procedure": "procedures",
}


def table(run: Run, name: str) -> list[dict[str, str]]:
    with (run.out / "csv" / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def header(run: Run, name: str) -> str:
    return (run.out / "csv" / f"{name}.csv").read_text().split("\n", 1)[0]


def has_value(holder: dict[str, Any]) -> bool:
    return any(key.startswith("value") for key in holder)


def test_every_table_has_synthea_columns(run: Run) -> None:
    for name, columns in SYNTHEA_HEADERS.items():
        assert header(run, name) == columns


def test_one_row_per_record_and_per_observation_value(run: Run) -> None:
    for resource_type, name in TABLE_OF.items():
        expected = run.manifest.counts.get(resource_type, 0)
        assert len(table(run, name)) == expected, name
    observations = run.ndjson("Observation")
    values = sum(
        has_value(o) + sum(has_value(c) for c in o.get("component", [])) for o in observations
    )
    assert len(table(run, "observations")) == values


def test_rows_join_with_the_fhir_ids(run: Run) -> None:
    patients = {p["id"]: p for p in run.ndjson("Patient")}
    encounters = {e["id"] for e in run.ndjson("Encounter")}
    rows = table(run, "patients")
    assert [row["Id"] for row in rows] == list(patients)
    for row in rows:
        patient = patients[row["Id"]]
        assert row["BIRTHDATE"] == patient["birthDate"]
        assert row["GENDER"] == {"female": "F", "male": "M"}[patient["gender"]]
        assert row["FIRST"]
        assert row["LAST"]
        assert row["SSN"].startswith("9")
    for name in ("encounters", "conditions", "observations", "procedures", "immunizations"):
        for row in table(run, name):
            assert row["PATIENT"] in patients, name
            assert row.get("ENCOUNTER", next(iter(encounters))) in encounters | {""}, name
            assert row["CODE"], name
