"""CSV tables shaped like Synthea's CSV exporter, projected from the FHIR resources.

One table per kind of record (``patients.csv``, ``encounters.csv``, ...) with Synthea's column
names in Synthea's order; the cost and payer columns are left out (this generator models no
claims). Keys (``Id``, ``PATIENT``, ``ENCOUNTER``, ...) are the FHIR resource ids, so the CSV
rows join with the NDJSON and Bundle outputs of the same run. An Observation with components
(a blood-pressure panel) is one row per component, as Synthea writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = list[str]
Resource = dict[str, Any]

SYSTEM_NAMES = {
    "http://snomed.info/sct": "SNOMED-CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://loinc.org": "LOINC",
    "http://hl7.org/fhir/sid/cvx": "CVX",
}
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
GEOLOCATION_URL = "http://hl7.org/fhir/StructureDefinition/geolocation"

# fmt: off
HEADERS: dict[str, list[str]] = {
    "patients": [
        "Id", "BIRTHDATE", "DEATHDATE", "SSN", "DRIVERS", "PASSPORT", "PREFIX", "FIRST", "LAST",
        "SUFFIX", "MAIDEN", "MARITAL", "RACE", "ETHNICITY", "GENDER", "BIRTHPLACE", "ADDRESS",
        "CITY", "STATE", "COUNTY", "ZIP", "LAT", "LON",
    ],
    "encounters": [
        "Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PROVIDER", "ENCOUNTERCLASS", "CODE",
        "DESCRIPTION", "REASONCODE", "REASONDESCRIPTION",
    ],
    "conditions": ["START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION"],
    "observations": [
        "DATE", "PATIENT", "ENCOUNTER", "CATEGORY", "CODE", "DESCRIPTION", "VALUE", "UNITS", "TYPE",
    ],
    "medications": [
        "START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "REASONCODE",
        "REASONDESCRIPTION",
    ],
    "immunizations": ["DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"],
    "allergies": [
        "START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "SYSTEM", "DESCRIPTION", "TYPE",
        "CATEGORY", "REACTION1", "DESCRIPTION1", "SEVERITY1", "REACTION2", "DESCRIPTION2",
        "SEVERITY2",
    ],
    "procedures": [
        "START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION", "REASONCODE",
        "REASONDESCRIPTION",
    ],
}
# fmt: on


def reference_id(reference: Any) -> str:
    """The id a Reference points at (``Patient/abc`` and ``urn:uuid:abc`` both give ``abc``)."""
    if not reference:
        return ""
    value: str = reference.get("reference", "")
    if value.startswith("urn:"):
        return value[value.rfind(":") + 1 :]
    return value[value.rfind("/") + 1 :]


def _coding(concept: Any) -> dict[str, Any]:
    if isinstance(concept, dict):
        codings = concept.get("coding") or [{}]
        first: dict[str, Any] = codings[0]
        return first
    return {}


def _code(concept: Any) -> tuple[str, str]:
    if not concept:
        return "", ""
    codings = concept.get("coding")
    if not codings:
        return "", str(concept.get("text", ""))
    coding = codings[0]
    return str(coding.get("code", "")), str(coding.get("display", concept.get("text", "")))


def _system(concept: Any) -> str:
    system = str(_coding(concept).get("system", ""))
    return SYSTEM_NAMES.get(system, system)


def _first(items: Any) -> Any:
    return items[0] if isinstance(items, list) and items else None


def _extension(resource: Resource, url: str) -> list[dict[str, Any]]:
    for extension in resource.get("extension", ()):
        if extension.get("url") == url:
            inner: list[dict[str, Any]] = extension.get("extension", [])
            return inner or [extension]
    return []


def _omb_text(resource: Resource, url: str) -> str:
    for part in _extension(resource, url):
        if part.get("url") == "ombCategory":
            return str(part.get("valueCoding", {}).get("display", "")).lower()
    return ""


def _period(resource: Resource, name: str) -> tuple[str, str]:
    period = resource.get(f"{name}Period")
    if isinstance(period, dict):
        return str(period.get("start", "")), str(period.get("end", ""))
    return str(resource.get(f"{name}DateTime", "")), ""


class ReasonLookup:
    """The code of a Condition a resource gives as its reason (``reasonReference``)."""

    def __init__(self, resources: list[Resource]) -> None:
        self._codes = {
            r["id"]: _code(r.get("code")) for r in resources if r["resourceType"] == "Condition"
        }

    def of(self, resource: Resource) -> tuple[str, str]:
        concept = _first(resource.get("reasonCode"))
        if concept is not None:
            return _code(concept)
        reference = _first(resource.get("reasonReference"))
        return self._codes.get(reference_id(reference), ("", ""))


def _identifier(patient: Resource, system: str | None = None, type_code: str | None = None) -> str:
    for identifier in patient.get("identifier", ()):
        if system is not None and identifier.get("system") == system:
            return str(identifier.get("value", ""))
        if type_code is not None and _coding(identifier.get("type")).get("code") == type_code:
            return str(identifier.get("value", ""))
    return ""


def patient_rows(patient: Resource, _: ReasonLookup) -> list[Row]:
    names = patient.get("name", [])
    official = next((n for n in names if n.get("use") == "official"), _first(names) or {})
    maiden: dict[str, Any] = next((n for n in names if n.get("use") == "maiden"), {})
    address = _first(patient.get("address")) or {}
    geo = {p.get("url"): p.get("valueDecimal") for p in _extension(address, GEOLOCATION_URL)}
    birthplace: dict[str, Any] = next(
        (
            e.get("valueAddress", {})
            for e in patient.get("extension", ())
            if e.get("url", "").endswith("patient-birthPlace")
        ),
        {},
    )
    row = [
        patient["id"],
        str(patient.get("birthDate", "")),
        str(patient.get("deceasedDateTime", ""))[:10],
        _identifier(patient, system=SSN_SYSTEM),
        _identifier(patient, type_code="DL"),
        _identifier(patient, type_code="PPN"),
        " ".join(official.get("prefix", [])),
        " ".join(official.get("given", [])),
        str(official.get("family", "")),
        " ".join(official.get("suffix", [])),
        str(maiden.get("family", "")),
        str(_coding(patient.get("maritalStatus")).get("code", "")),
        _omb_text(patient, RACE_URL),
        _omb_text(patient, ETHNICITY_URL),
        {"female": "F", "male": "M"}.get(str(patient.get("gender")), ""),
        ", ".join(
            str(birthplace.get(k, "")) for k in ("city", "state", "country") if birthplace.get(k)
        ),
        " ".join(address.get("line", [])),
        str(address.get("city", "")),
        str(address.get("state", "")),
        str(address.get("district", "")),
        str(address.get("postalCode", "")),
        "" if geo.get("latitude") is None else str(geo["latitude"]),
        "" if geo.get("longitude") is None else str(geo["longitude"]),
    ]
    return [row]


def encounter_rows(encounter: Resource, reasons: ReasonLookup) -> list[Row]:
    period = encounter.get("period", {})
    participant = _first(encounter.get("participant")) or {}
    encounter_class = encounter.get("class", {})
    row = [
        encounter["id"],
        str(period.get("start", "")),
        str(period.get("end", "")),
        reference_id(encounter.get("subject")),
        reference_id(encounter.get("serviceProvider")),
        reference_id(participant.get("individual")),
        str(encounter_class.get("code", "")) if isinstance(encounter_class, dict) else "",
        *_code(_first(encounter.get("type"))),
        *reasons.of(encounter),
    ]
    return [row]


def condition_rows(condition: Resource, _: ReasonLookup) -> list[Row]:
    onset, _end = _period(condition, "onset")
    abated, _end = _period(condition, "abatement")
    concept = condition.get("code")
    row = [
        onset[:10],
        abated[:10],
        reference_id(condition.get("subject")),
        reference_id(condition.get("encounter")),
        _system(concept),
        *_code(concept),
    ]
    return [row]


def _value(holder: Resource) -> tuple[str, str, str] | None:
    quantity = holder.get("valueQuantity")
    if quantity is not None:
        return str(quantity.get("value", "")), str(quantity.get("unit", "")), "numeric"
    if "valueCodeableConcept" in holder:
        return _code(holder["valueCodeableConcept"])[1], "", "text"
    for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if key in holder:
            return str(holder[key]), "", "numeric" if key == "valueInteger" else "text"
    return None


def observation_rows(observation: Resource, _: ReasonLookup) -> list[Row]:
    date = observation.get("effectiveDateTime") or _period(observation, "effective")[0]
    head = [
        str(date),
        reference_id(observation.get("subject")),
        reference_id(observation.get("encounter")),
        str(_coding(_first(observation.get("category"))).get("code", "")),
    ]
    rows = []
    value = _value(observation)
    if value is not None:
        rows.append([*head, *_code(observation.get("code")), *value])
    for component in observation.get("component", ()):
        value = _value(component)
        if value is not None:
            rows.append([*head, *_code(component.get("code")), *value])
    return rows


def medication_rows(request: Resource, reasons: ReasonLookup) -> list[Row]:
    validity = request.get("dispenseRequest", {}).get("validityPeriod", {})
    row = [
        str(request.get("authoredOn", validity.get("start", ""))),
        str(validity.get("end", "")),
        reference_id(request.get("subject")),
        reference_id(request.get("encounter")),
        *_code(request.get("medicationCodeableConcept")),
        *reasons.of(request),
    ]
    return [row]


def immunization_rows(immunization: Resource, _: ReasonLookup) -> list[Row]:
    row = [
        str(immunization.get("occurrenceDateTime", "")),
        reference_id(immunization.get("patient")),
        reference_id(immunization.get("encounter")),
        *_code(immunization.get("vaccineCode")),
    ]
    return [row]


def allergy_rows(allergy: Resource, _: ReasonLookup) -> list[Row]:
    concept = allergy.get("code")
    code, description = _code(concept)
    reactions: list[str] = []
    for reaction in allergy.get("reaction", [])[:2]:
        reactions += [
            *_code(_first(reaction.get("manifestation"))),
            str(reaction.get("severity", "")),
        ]
    reactions += [""] * (6 - len(reactions))
    onset = allergy.get("onsetDateTime", allergy.get("recordedDate", ""))
    row = [
        str(onset)[:10],
        "",
        reference_id(allergy.get("patient")),
        reference_id(allergy.get("encounter")),
        code,
        _system(concept),
        description,
        str(allergy.get("type", "")),
        str(_first(allergy.get("category")) or ""),
        *reactions,
    ]
    return [row]


def procedure_rows(procedure: Resource, reasons: ReasonLookup) -> list[Row]:
    start, stop = _period(procedure, "performed")
    concept = procedure.get("code")
    row = [
        start,
        stop,
        reference_id(procedure.get("subject")),
        reference_id(procedure.get("encounter")),
        _system(concept),
        *_code(concept),
        *reasons.of(procedure),
    ]
    return [row]


#: resource type -> (table, row projection)
PROJECTIONS: dict[str, tuple[str, Callable[[Resource, ReasonLookup], list[Row]]]] = {
    "Patient": ("patients", patient_rows),
    "Encounter": ("encounters", encounter_rows),
    "Condition": ("conditions", condition_rows),
    "Observation": ("observations", observation_rows),
    "MedicationRequest": ("medications", medication_rows),
    "Immunization": ("immunizations", immunization_rows),
    "AllergyIntolerance": ("allergies", allergy_rows),
    "Procedure": ("procedures", procedure_rows),
}
