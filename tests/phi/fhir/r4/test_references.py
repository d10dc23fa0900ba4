"""The shapes of a Reference's ``reference`` R4 allows, and the type each names."""

from __future__ import annotations

import pytest

from medmesh.phi.fhir.r4.references import NO_TYPE, referenced_type


@pytest.mark.parametrize(
    ("reference", "named"),
    [
        ("Patient/123", "Patient"),
        ("Patient/123/_history/2", "Patient"),
        ("https://fhir.example.org/r4/Observation/a.1", "Observation"),
        ("Organization?identifier=https://github.com/synthetichealth/synthea|abc", "Organization"),
        ("#contained-1", NO_TYPE),
        ("urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b", NO_TYPE),
        ("urn:oid:1.2.3", NO_TYPE),
        ("https://example.org/some/page", NO_TYPE),
        ("patient/1", "patient"),
        ("Patient 1", None),
        ("#", None),
        ("Patient/", None),
    ],
)
def test_referenced_type(reference: str, named: str | None) -> None:
    assert referenced_type(reference) == named
