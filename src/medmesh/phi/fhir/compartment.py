"""The Patient compartment: which patient a resource belongs to.

A resource is in the compartment of the patient its patient-linking elements point at
(FHIR R4 CompartmentDefinition "Patient", vendored with :mod:`medmesh.phi.fhir.r4`): the
first Patient found along the elements of its type's compartment parameters, in the
definition's order (``Specimen.subject``; ``Composition.subject``, ``.author``,
``.attester.party``). The types stored before R4's were all accepted keep their primary link
(``Observation.subject``, not ``.performer``; ``Device.patient``, which R4 leaves out).
A Patient is in its own compartment. Resources with no patient (Practitioner,
Organization, Location, Endpoint) belong to none.

Writers bring every reference to its canonical form first
(:func:`medmesh.phi.fhir.references.canonicalize_references`), so a write only ever hands
this module ``Patient/id`` (or ``Patient/id/_history/v``), an external URL, a placeholder or
``#contained``. A stored version written before that rule (``Patient/B/``, ``patient/B``)
is read leniently, into the compartment its spelling evidently means: a rule that holds
for ``Patient/B`` then holds for it too, never less.
"""

from __future__ import annotations

from typing import Any

from medmesh.phi.fhir.r4.definitions import compartment_definitions
from medmesh.phi.fhir.references import is_non_local, lenient_target, parse_canonical
from medmesh.phi.fhir.types import SUPPORTED_TYPES

#: The primary links of the types stored before every R4 type was.
_PRIMARY_LINKS: dict[str, tuple[str, ...]] = {
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


def _element_path(expression: str, resource_type: str) -> str | None:
    """``Procedure.performer.actor`` as ``performer.actor``; None for another type's part or a
    path that is not plain elements (after dropping ``.where(resolve() is Patient)``)."""
    text = expression.strip().removesuffix(".where(resolve() is Patient)")
    prefix = f"{resource_type}."
    if not text.startswith(prefix):
        return None
    path = text[len(prefix) :]
    return path if all(step.isalnum() for step in path.split(".")) else None


def _r4_links() -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    """``{type: ((search parameter, (element path, ...)), ...)}`` of R4's Patient compartment."""
    loaded = compartment_definitions()
    expressions: dict[str, str] = loaded["expressions"]
    links = {}
    for resource_type, parameters in loaded["compartments"]["Patient"].items():
        if resource_type not in SUPPORTED_TYPES or resource_type == "Patient":
            continue
        found = []
        for name in parameters:
            expression = expressions.get(f"{resource_type}.{name}", "")
            paths = (_element_path(part, resource_type) for part in expression.split("|"))
            kept = tuple(dict.fromkeys(p for p in paths if p))
            if kept:
                found.append((name, kept))
        if found:
            links[resource_type] = tuple(found)
    return links


#: R4's Patient compartment: each type's parameters and the element paths they read.
COMPARTMENT_PARAMETERS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = _r4_links()

#: Element paths (dotted), in order of preference, that link a resource to its patient.
PATIENT_LINKS: dict[str, tuple[str, ...]] = {
    **{
        resource_type: tuple(dict.fromkeys(p for _, paths in parameters for p in paths))
        for resource_type, parameters in COMPARTMENT_PARAMETERS.items()
    },
    **_PRIMARY_LINKS,
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
        for item in _values(resource, element):
            patient = _patient_of(item)
            if patient:
                return patient
    return None


def _values(resource: dict[str, Any], path: str) -> list[Any]:
    """Every value at the dotted element ``path`` of ``resource``, arrays flattened."""
    found: list[Any] = [resource]
    for step in path.split("."):
        found = [
            item
            for node in found
            if isinstance(node, dict)
            for value in [node.get(step)]
            if value is not None
            for item in (value if isinstance(value, list) else [value])
        ]
    return found
