"""The second opinion of the R4 validator's tests: fhir.resources' R4B models plus the
required bindings they skip, as phi validated before it validated R4 itself.

fhir.resources checks structure, cardinality, primitive formats and unknown
elements, but not the value sets of required bindings (``Patient.gender`` accepts
"banana"). :data:`REQUIRED_CODES` closes that gap for the codes clients most often
get wrong. Messages name the element and the problem, never the submitted value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.types import is_valid_id

#: The types this validator knows (every type of the Synthea bundles and the HL7 examples,
#: and the clinical core).
SUPPORTED_TYPES: frozenset[str] = frozenset(
    {
        "AllergyIntolerance",
        "CarePlan",
        "CareTeam",
        "Claim",
        "Condition",
        "Consent",
        "Coverage",
        "Device",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "ExplanationOfBenefit",
        "Goal",
        "ImagingStudy",
        "Immunization",
        "Location",
        "Medication",
        "MedicationAdministration",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Organization",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "RelatedPerson",
        "ServiceRequest",
        "SupplyDelivery",
    }
)

_EVENT_STATUS = {
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "entered-in-error",
    "unknown",
}
_REQUEST_STATUS = {
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
}

#: (resource type, element) -> the codes of its required binding.
REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("Practitioner", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("RelatedPerson", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("Observation", "status"): frozenset(
        {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("DiagnosticReport", "status"): frozenset(
        {
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("Encounter", "status"): frozenset(
        {
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("Procedure", "status"): frozenset(_EVENT_STATUS),
    ("Immunization", "status"): frozenset({"completed", "entered-in-error", "not-done"}),
    ("MedicationRequest", "status"): frozenset(
        {
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        }
    ),
    ("MedicationRequest", "intent"): frozenset(
        {
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        }
    ),
    ("CarePlan", "status"): frozenset(_REQUEST_STATUS),
    ("CarePlan", "intent"): frozenset({"proposal", "plan", "order", "option"}),
    ("Claim", "status"): frozenset({"active", "cancelled", "draft", "entered-in-error"}),
    ("ExplanationOfBenefit", "status"): frozenset(
        {"active", "cancelled", "draft", "entered-in-error"}
    ),
    ("Consent", "status"): frozenset(
        {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
    ),
    ("DocumentReference", "status"): frozenset({"current", "superseded", "entered-in-error"}),
    ("AllergyIntolerance", "criticality"): frozenset({"low", "high", "unable-to-assess"}),
}


# pydantic's lax mode turns strings such as "true" or "12" into booleans or numbers; FHIR JSON
# must not (R4 JSON §2.6.2: booleans and numbers are JSON primitives). The parsed model is walked
# alongside the JSON, element by element through each model's aliases (its FHIR names), and a
# JSON string whose parsed value is a boolean or a number is refused. Walking the objects costs a
# fraction of dumping the model back to JSON and comparing the two.
_NUMERIC = (bool, int, float, Decimal)


@functools.cache
def _aliases(model: type[BaseModel]) -> dict[str, str]:
    return {(field.alias or name): name for name, field in model.model_fields.items()}


def coerced_path(given: Any, parsed: Any) -> str | None:
    """The first element where the model turned a JSON string into a boolean or a number."""
    if type(given) is str:
        return "resource" if isinstance(parsed, _NUMERIC) else None
    found = _coerced(given, parsed)
    if found is None:
        return None
    path = ""
    for step in reversed(found):
        if isinstance(step, int):
            path += f"[{step}]"
        else:
            path += f".{step}" if path else step
    return path


def _coerced(given: Any, parsed: Any) -> list[str | int] | None:
    """The path (innermost step first) to the first coerced string below ``given``; strings are
    checked in the loop rather than by a call each (a resource holds dozens)."""
    for step, value, child in _children(given, parsed):
        if type(value) is str:
            if isinstance(child, _NUMERIC):
                return [step]
            continue
        found = _coerced(value, child)
        if found is not None:
            found.append(step)
            return found
    return None


def _children(given: Any, parsed: Any) -> Iterator[tuple[str | int, Any, Any]]:
    """``(name or index, JSON value, parsed value)`` of the containers and strings in ``given``."""
    if type(given) is dict:
        if isinstance(parsed, BaseModel):
            aliases = _aliases(type(parsed))
            for key, value in given.items():
                kind = type(value)
                if (kind is dict or kind is list or kind is str) and key in aliases:
                    yield key, value, getattr(parsed, aliases[key], None)
        elif isinstance(parsed, dict):
            for key, value in given.items():
                if key in parsed:
                    yield key, value, parsed[key]
    elif type(given) is list and isinstance(parsed, list) and len(given) == len(parsed):
        yield from zip(range(len(given)), given, parsed, strict=True)


def json_depth(value: Any, limit: int) -> int:
    """The nesting depth of a parsed JSON value (a scalar is one level); stops past ``limit``
    (recursing at most ``limit`` calls deep, however deep the value)."""
    if limit < 1:
        return 1  # deeper than the caller's limit already
    kind = type(value)
    if kind is dict:
        children = value.values()
    elif kind is list:
        children = value
    else:
        return 1
    deepest = 1
    for child in children:
        kind = type(child)
        if kind is dict or kind is list:
            depth = 1 + json_depth(child, limit - 1)
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif deepest < 2:
            deepest = 2
    return deepest


def _describe(error: ValidationError) -> tuple[str, list[str]]:
    parts, paths = [], []
    for item in error.errors()[:10]:
        path = ".".join(str(p) for p in item.get("loc", ()) if not isinstance(p, int) or True)
        paths.append(path)
        parts.append(f"{path or 'resource'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts), paths


def validate_resource(
    resource: Any, *, expected_type: str | None = None, max_depth: int = 64
) -> str:
    """Check ``resource``; return its type. Raises :class:`InvalidResource` (400)."""
    if not isinstance(resource, dict):
        raise InvalidResource(
            "the body must be a JSON object (a FHIR resource)", issue_code="structure"
        )
    if json_depth(resource, max_depth) > max_depth:
        raise InvalidResource(
            f"the resource nests deeper than {max_depth} levels", issue_code="too-costly"
        )
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource("resourceType is missing", issue_code="required")
    if expected_type is not None and resource_type != expected_type:
        raise InvalidResource(
            f"resourceType {resource_type[:64]!r} does not match the URL ({expected_type})",
            issue_code="invalid",
        )
    if resource_type not in SUPPORTED_TYPES:
        raise InvalidResource(
            f"resource type {resource_type[:64]!r} is not supported", issue_code="not-supported"
        )
    resource_id = resource.get("id")
    if resource_id is not None and (
        not isinstance(resource_id, str) or not is_valid_id(resource_id)
    ):
        raise InvalidResource(
            "id is not a valid FHIR id", issue_code="value", expression=[f"{resource_type}.id"]
        )
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(resource_type)
    try:
        parsed = model.model_validate(resource)
    except ValidationError as exc:
        message, paths = _describe(exc)
        raise InvalidResource(
            message, issue_code="structure", expression=[f"{resource_type}.{p}" for p in paths]
        ) from None
    except (ValueError, TypeError) as exc:
        raise InvalidResource(
            f"{resource_type}: {type(exc).__name__}", issue_code="structure"
        ) from None
    coerced = coerced_path(resource, parsed)
    if coerced is not None:
        raise InvalidResource(
            f"{resource_type}.{coerced} has the wrong JSON type (a string where FHIR wants a "
            "boolean or a number)",
            issue_code="structure",
            expression=[f"{resource_type}.{coerced}"],
        )
    for (rtype, element), codes in REQUIRED_CODES.items():
        if rtype == resource_type and element in resource and resource[element] not in codes:
            raise InvalidResource(
                f"{rtype}.{element} is not a code of its required value set",
                issue_code="code-invalid",
                expression=[f"{rtype}.{element}"],
            )
    return resource_type
