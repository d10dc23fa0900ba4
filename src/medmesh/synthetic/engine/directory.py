"""The run's care directory: Organizations, Locations, Practitioners and PractitionerRoles.

Each state in the run has a hospital (emergency visits) and a family-medicine clinic (wellness
and follow-up visits), in two of its cities, each with a Location and three practitioners.
Deterministic from (seed, state): a worker rebuilds exactly the same directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import Any

from medmesh.synthetic.engine.catalog.names import FIRST_NAMES_BY_ERA, SURNAMES
from medmesh.synthetic.engine.catalog.places import STATES, STREET_NAMES, STREET_SUFFIXES
from medmesh.synthetic.engine.catalog.terminology import META, snomed
from medmesh.synthetic.engine.ids import derived_seed, uuid_factory

Json = dict[str, Any]

_NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
_ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
_SPECIALTIES = {
    "hospital": snomed("773568002", "Emergency medicine (qualifier value)"),
    "clinic": snomed("419772000", "Family practice (qualifier value)"),
}
PRACTITIONERS_PER_SITE = 3


@dataclass(frozen=True)
class CareSite:
    """A hospital or clinic with the reference dicts encounters share (never mutated)."""

    kind: str
    organization: Json
    location: Json
    service_provider: Json
    locations: list[Json]
    #: one ``participant`` list per practitioner of the site
    participants: tuple[list[Json], ...]
    practitioner_refs: tuple[Json, ...]


def _npi(rng: Random) -> str:
    """A 10-digit number shaped like an NPI (Luhn check digit over the 80840 prefix)."""
    body = f"1{rng.randrange(10**8):08d}"
    total, digits = 24, [int(d) for d in body]  # 24 = the 80840 prefix's contribution
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return body + str((10 - total % 10) % 10)


def _address(rng: Random, state: str, city: str, zips: tuple[str, ...]) -> Json:
    street = f"{rng.randrange(100, 9900)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_SUFFIXES)}"
    return {
        "line": [street],
        "city": city,
        "state": state,
        "postalCode": rng.choice(zips),
        "country": "US",
    }


def _site(
    rng: Random, new_id: Any, kind: str, state: str, city_index: int
) -> tuple[CareSite, list[Json]]:
    _, _, area, cities = STATES[state]
    city, zips = cities[city_index % len(cities)]
    title = f"{city} General Hospital" if kind == "hospital" else f"{city} Family Health Center"
    address = _address(rng, state, city, zips)
    phone = {"system": "phone", "value": f"{area}-555-01{rng.randrange(100):02d}"}
    org_id, loc_id = new_id(), new_id()
    org_type = ("prov", "Healthcare Provider")
    organization = {
        "resourceType": "Organization",
        "id": org_id,
        "meta": META,
        "identifier": [{"system": _NPI_SYSTEM, "value": _npi(rng)}],
        "active": True,
        "type": [{"coding": [{"system": _ORG_TYPE, "code": org_type[0], "display": org_type[1]}]}],
        "name": title,
        "telecom": [phone],
        "address": [address],
    }
    location = {
        "resourceType": "Location",
        "id": loc_id,
        "meta": META,
        "status": "active",
        "name": title,
        "telecom": [phone],
        "address": address,
        "managingOrganization": {"reference": f"Organization/{org_id}", "display": title},
    }
    resources: list[Json] = [organization, location]
    participants, refs = [], []
    for _ in range(PRACTITIONERS_PER_SITE):
        female = rng.random() < 0.5
        _, males, females = FIRST_NAMES_BY_ERA[1]
        given = rng.choice(females if female else males)
        family = rng.choice(SURNAMES)[0]
        practitioner_id = new_id()
        display = f"Dr. {given} {family}"
        practitioner = {
            "resourceType": "Practitioner",
            "id": practitioner_id,
            "meta": META,
            "identifier": [{"system": _NPI_SYSTEM, "value": _npi(rng)}],
            "active": True,
            "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
            "telecom": [phone],
            "gender": "female" if female else "male",
        }
        role = {
            "resourceType": "PractitionerRole",
            "id": new_id(),
            "meta": META,
            "active": True,
            "practitioner": {"reference": f"Practitioner/{practitioner_id}", "display": display},
            "organization": {"reference": f"Organization/{org_id}", "display": title},
            "specialty": [_SPECIALTIES[kind]],
            "location": [{"reference": f"Location/{loc_id}", "display": title}],
        }
        resources += [practitioner, role]
        ref = {"reference": f"Practitioner/{practitioner_id}", "display": display}
        refs.append(ref)
        participants.append([{"individual": ref}])
    site = CareSite(
        kind=kind,
        organization=organization,
        location=location,
        service_provider={"reference": f"Organization/{org_id}", "display": title},
        locations=[{"location": {"reference": f"Location/{loc_id}", "display": title}}],
        participants=tuple(participants),
        practitioner_refs=tuple(refs),
    )
    return site, resources


@dataclass(frozen=True)
class Directory:
    """The run's sites by state and all their resources, in a stable order."""

    resources: list[Json]
    #: state -> (hospital, clinic)
    sites: dict[str, tuple[CareSite, CareSite]]


def build_directory(seed: int, state: str | None) -> Directory:
    """The directory of the run with ``seed`` limited to ``state`` (all states when None)."""
    # Reproducible on purpose: synthetic data, not secrets.
    rng = Random(derived_seed(seed, "directory", state or "US"))  # noqa: S311
    new_id = uuid_factory(rng)
    resources: list[Json] = []
    sites: dict[str, tuple[CareSite, CareSite]] = {}
    for code in [state] if state else sorted(STATES):
        hospital, hospital_resources = _site(rng, new_id, "hospital", code, 0)
        clinic, clinic_resources = _site(rng, new_id, "clinic", code, 1)
        resources += hospital_resources + clinic_resources
        sites[code] = (hospital, clinic)
    return Directory(resources, sites)
