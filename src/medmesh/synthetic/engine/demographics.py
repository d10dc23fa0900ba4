"""Who the patient is: the Patient resource (names, address, contacts, identifiers, race and
ethnicity as US Core extensions)."""

from __future__ import annotations

from bisect import bisect
from itertools import accumulate
from random import Random
from typing import Any

from medmesh.synthetic.engine.catalog.names import (
    ASIAN_SURNAMES,
    FIRST_NAMES_BY_ERA,
    HISPANIC_SURNAMES,
    SURNAMES,
)
from medmesh.synthetic.engine.catalog.places import STATES, STREET_NAMES, STREET_SUFFIXES
from medmesh.synthetic.engine.catalog.population import (
    HISPANIC,
    NOT_HISPANIC,
    OMB_RACE_SYSTEM,
    OTHER_RACE,
    RACE_ETHNICITY,
    RACES,
)

Json = dict[str, Any]

MRN_SYSTEM = "https://medmesh.example/fhir/sid/synthetic-mrn"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MR_TYPE = {"coding": [{"system": _V2_0203, "code": "MR", "display": "Medical record number"}]}
SS_TYPE = {"coding": [{"system": _V2_0203, "code": "SS", "display": "Social Security number"}]}
BIRTH_SEX = {
    False: {"url": _US_CORE + "us-core-birthsex", "valueCode": "M"},
    True: {"url": _US_CORE + "us-core-birthsex", "valueCode": "F"},
}


def _race_extension(races: tuple[str, ...]) -> Json:
    parts: list[Json] = []
    texts = []
    for race in races:
        code, display = OTHER_RACE if race == "other" else RACES[race]
        url = "detailed" if race == "other" else "ombCategory"
        parts.append(
            {
                "url": url,
                "valueCoding": {"system": OMB_RACE_SYSTEM, "code": code, "display": display},
            }
        )
        texts.append(display)
    parts.append({"url": "text", "valueString": " and ".join(texts)})
    return {"url": _US_CORE + "us-core-race", "extension": parts}


def _ethnicity_extension(hispanic: bool) -> Json:
    code, display = HISPANIC if hispanic else NOT_HISPANIC
    return {
        "url": _US_CORE + "us-core-ethnicity",
        "extension": [
            {
                "url": "ombCategory",
                "valueCoding": {"system": OMB_RACE_SYSTEM, "code": code, "display": display},
            },
            {"url": "text", "valueString": display},
        ],
    }


#: (hispanic, race keys, [race extension, ethnicity extension]) per census group.
RACE_GROUPS = tuple(
    (hispanic, races, (_race_extension(races), _ethnicity_extension(hispanic)))
    for hispanic, races, _ in RACE_ETHNICITY
)
RACE_CUMULATIVE = tuple(accumulate(share for _, _, share in RACE_ETHNICITY))


def _cumulative(pairs: tuple[tuple[str, int], ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return tuple(p[0] for p in pairs), tuple(accumulate(float(p[1]) for p in pairs))


def _ranked(names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    # Zipf-like weights: the first names of an era are far more common than the 30th.
    return names, tuple(accumulate(1 / (rank + 4) for rank in range(len(names))))


SURNAME_TABLES = {
    "general": _cumulative(SURNAMES),
    "hispanic": _cumulative(HISPANIC_SURNAMES),
    "asian": _cumulative(ASIAN_SURNAMES),
}
FIRST_NAME_TABLES = tuple(
    (before, _ranked(males), _ranked(females)) for before, males, females in FIRST_NAMES_BY_ERA
)
STATE_TABLE = (tuple(STATES), tuple(accumulate(v[1] for v in STATES.values())))


def pick(rng: Random, table: tuple[tuple[str, ...], tuple[float, ...]]) -> str:
    """A weighted choice from ``(values, cumulative weights)`` (``rng.choices`` without its
    per-call overhead)."""
    values, cumulative = table
    return values[bisect(cumulative, rng.random() * cumulative[-1])]


def choose_state(rng: Random, fixed: str | None) -> str:
    """The option's state, or one drawn by population."""
    return fixed if fixed else pick(rng, STATE_TABLE)


def patient_resource(
    rng: Random,
    *,
    patient_id: str,
    female: bool,
    birth_date: str,
    birth_year: int,
    deceased: str | None,
    state: str,
    mrn: str,
    meta: Json,
    practitioner: Json,
    organization: Json,
) -> Json:
    """The Patient resource with demographics drawn from ``rng``."""
    group_index = bisect(RACE_CUMULATIVE, rng.random() * RACE_CUMULATIVE[-1])
    hispanic, races, extensions = RACE_GROUPS[group_index]
    group = "hispanic" if hispanic else ("asian" if races == ("asian",) else "general")
    if group != "general" and rng.random() < 0.25:
        group = "general"
    family = pick(rng, SURNAME_TABLES[group])
    for before, males, females in FIRST_NAME_TABLES:
        if birth_year < before:
            table = females if female else males
            break
    given = [pick(rng, table)]
    if rng.random() < 0.6:
        middle = pick(rng, table)
        if middle != given[0]:
            given.append(middle)
    _, _, area, cities = STATES[state]
    random = rng.random
    city, zips = cities[int(random() * len(cities))]
    street_name = STREET_NAMES[int(random() * len(STREET_NAMES))]
    suffix = STREET_SUFFIXES[int(random() * len(STREET_SUFFIXES))]
    street = f"{1 + int(random() * 9998)} {street_name} {suffix}"
    if random() < 0.15:
        street += f" Apt {1 + int(random() * 39)}"
    # SSA never issues area numbers 900-999: these can never be a real person's SSN.
    ssn = f"9{int(random() * 100):02d}-{1 + int(random() * 99):02d}-{1 + int(random() * 9999):04d}"
    email = f"{given[0]}.{family}{int(random() * 100)}@example.com".lower()
    # 555-0100..555-0199 are the numbers reserved for fiction.
    phone = f"{area}-555-01{int(random() * 100):02d}"
    postal_code = zips[int(random() * len(zips))]
    resource: Json = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": meta,
        "extension": [*extensions, BIRTH_SEX[female]],
        "identifier": [
            {"use": "usual", "type": MR_TYPE, "system": MRN_SYSTEM, "value": mrn},
            {"type": SS_TYPE, "system": SSN_SYSTEM, "value": ssn},
        ],
        "name": [{"use": "official", "family": family, "given": given}],
        "telecom": [
            {"system": "phone", "value": phone, "use": "home"},
            {"system": "email", "value": email},
        ],
        "gender": "female" if female else "male",
        "birthDate": birth_date,
    }
    if deceased is not None:
        resource["deceasedDateTime"] = deceased
    resource["address"] = [
        {
            "use": "home",
            "line": [street],
            "city": city,
            "state": state,
            "postalCode": postal_code,
            "country": "US",
        }
    ]
    resource["generalPractitioner"] = [practitioner]
    resource["managingOrganization"] = organization
    return resource
