"""Search parameters of people, organizations and places (FHIR R4, reduced)."""

from __future__ import annotations

from medmesh.phi.search.params import (
    STRING,
    SearchParamDef,
    date,
    identifier,
    param,
    patient,
    person,
    ref,
    status,
    token,
)

ADMIN_PARAMETERS: dict[str, list[SearchParamDef]] = {
    "Patient": [
        *person(),
        date(
            "birthdate",
            "The date of birth (prefixes eq, ne, lt, le, gt, ge, sa, eb; partial dates)",
            "birthDate",
        ),
        date("death-date", "The date of death", "deceasedDateTime"),
        token("active", "Whether the record is active", "active"),
        ref(
            "general-practitioner",
            "The patient's nominated care provider",
            "generalPractitioner",
            target=("Organization", "Practitioner", "PractitionerRole"),
        ),
        ref(
            "organization",
            "The organization that manages the record",
            "managingOrganization",
            target=("Organization",),
        ),
        ref(
            "link",
            "Other patients linked to this one",
            "link.other",
            target=("Patient", "RelatedPerson"),
        ),
    ],
    "RelatedPerson": [
        *person(with_name_parts=False),
        *patient(),
        date("birthdate", "The date of birth", "birthDate"),
        token("relationship", "The relationship to the patient", "relationship"),
    ],
    "Practitioner": [*person(), token("active", "Whether the record is active", "active")],
    "Organization": [
        identifier(),
        param("name", STRING, "Starts-with on the name or an alias", "name", "alias", blind=True),
        token("type", "The kind of organization", "type"),
        token("active", "Whether the record is active", "active"),
        ref("partof", "The organization this one is part of", "partOf", target=("Organization",)),
        param("address", STRING, "Starts-with on any part of the address", "address", blind=True),
        param(
            "address-postalcode",
            STRING,
            "Starts-with on the postal code",
            "address",
            blind=True,
            parts=("postalCode",),
        ),
    ],
    "Location": [
        identifier(),
        param("name", STRING, "Starts-with on the name or an alias", "name", "alias", blind=True),
        param("address", STRING, "Starts-with on any part of the address", "address", blind=True),
        param(
            "address-postalcode",
            STRING,
            "Starts-with on the postal code",
            "address",
            blind=True,
            parts=("postalCode",),
        ),
        status(),
        token("type", "The kind of location", "type"),
        ref(
            "organization",
            "The managing organization",
            "managingOrganization",
            target=("Organization",),
        ),
        ref("partof", "The location this one is part of", "partOf", target=("Location",)),
    ],
    "PractitionerRole": [
        identifier(),
        ref("practitioner", "The practitioner", "practitioner", target=("Practitioner",)),
        ref("organization", "The organization", "organization", target=("Organization",)),
        ref("location", "Where the role is performed", "location", target=("Location",)),
        token("role", "The role", "code"),
        token("specialty", "The specialty", "specialty"),
        token("active", "Whether the role is active", "active"),
    ],
}
