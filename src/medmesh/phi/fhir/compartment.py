"""The Patient compartment: which patient a resource belongs to.

A resource is in the compartment of the patient its patient-linking element
points at (FHIR R4 CompartmentDefinition "Patient", reduced to the primary link of
each type: ``subject``, ``patient``, ``beneficiary`` ...). A Patient is in its own
compartment. Resources with no patient (Practitioner, Organization, Location)
belong to none.

Writers bring every reference to its canonical form first
(:func:`medmesh.phi.fhir.references.canonicalize_references`), so a write only ever hands
this module ``Patient/id`` (or ``Patient/id/_history/v``), an external URL, a placeholder or
``#contained``. A stored version written before that rule (``Patient/B/``, ``patient/B``)
is read leniently, into the compartment its spelling evidently means: a rule that holds
for ``Patient/B`` then holds for it too, never less.
"""

from __future__ import annotations

from typing import Any

from medmesh.phi.fhir.references import is_non_local, lenient_target, parse_canonical

#: Elements, in order of preference, that link a resource to its patient.
PATIENT_LINKS: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("patient",),
    "CarePlan": ("subject",),
    "CareTeam": ("subject",),
    "Claim": ("patient",),
    "Condition": ("subject",),
    "Consent": ("patient",),
    "Coverage": ("beneficiary", "subscriber", "policyHolder"),
    "Device": ("patient",),
    "DiagnosticReport": ("subject",),
    "DocumentReference": ("subject",),
    "Encounter": ("subject",),
    "ExplanationOfBenefit": ("patient",),
    "Goal": ("subject",),
    "ImagingStudy": ("subject",),
    "Immunization": ("patient",),
    "MedicationAdministration": ("subject",),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "Observation": ("subject",),
    "Procedure": ("subject",),
    "Provenance": ("target",),
    "RelatedPerson": ("patient",),
    "ServiceRequest": ("subject",),
    "SupplyDelivery": ("patient",),
}


def _patient_of(reference: Any) -> str | None:
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None  # identifier-only: no local patient
    target = parse_canonical(ref)
    if target is None and not is_non_local(ref):
        target = lenient_target(ref)
    if target is not None and target.resource_type == "Patient":
        return target.id
    return None


def compartment_patient(resource: dict[str, Any]) -> str | None:
    """The id of the patient whose compartment ``resource`` is in, if any."""
    resource_type = resource.get("resourceType")
    if resource_type == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for element in PATIENT_LINKS.get(str(resource_type), ()):
        value = resource.get(element)
        for item in value if isinstance(value, list) else [value]:
            patient = _patient_of(item)
            if patient:
                return patient
    return None
