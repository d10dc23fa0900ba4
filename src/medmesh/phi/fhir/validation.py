"""Resource validation: FHIR R4 (4.0.1) itself, from HL7's definitions (:mod:`.r4`).

A body passes the cheap guards first (a JSON object, nesting no deeper than the setting, a
``resourceType`` matching the URL and stored here, a well-formed id); its references are
brought to their canonical form next (when the caller gives its bases; the depth guard's walk
finds them), and then the R4 validator, whose every issue (several at once, each naming its
element's path) goes into the 400 OperationOutcome. Messages name the element and the problem,
never the submitted value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.r4 import Issue, shared_validator
from medmesh.phi.fhir.references import LocalBases, canonicalize_holders
from medmesh.phi.fhir.types import SUPPORTED_TYPES, is_valid_id

#: The most issues one OperationOutcome lists.
MAX_ISSUES = 50


def json_depth(value: Any, limit: int, holders: list[dict[str, Any]] | None = None) -> int:
    """The nesting depth of a parsed JSON value (a scalar is one level); stops past ``limit``
    (recursing at most ``limit`` calls deep, however deep the value). With ``holders``, every
    object holding a ``reference`` key that the walk visits is appended to it (all of them
    unless the value is deeper than ``limit``)."""
    if limit < 1:
        return 1  # deeper than the caller's limit already
    kind = type(value)
    if kind is dict:
        if holders is not None and "reference" in value:
            holders.append(value)
        children = value.values()
    elif kind is list:
        children = value
    else:
        return 1
    deepest = 1
    for child in children:
        kind = type(child)
        if kind is dict or kind is list:
            depth = 1 + json_depth(child, limit - 1, holders)
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif deepest < 2:
            deepest = 2
    return deepest


def check_envelope(
    resource: Any,
    *,
    expected_type: str | None = None,
    max_depth: int = 64,
    holders: list[dict[str, Any]] | None = None,
) -> str:
    """The guards that run before validation: ``resource`` is an object no deeper than
    ``max_depth`` levels, of a type stored here (``expected_type`` when given), with a
    well-formed id. Returns its type; raises :class:`InvalidResource` (400). ``holders``
    receives the objects holding a ``reference`` key (:func:`json_depth`)."""
    if not isinstance(resource, dict):
        raise InvalidResource(
            "the body must be a JSON object (a FHIR resource)", issue_code="structure"
        )
    if json_depth(resource, max_depth, holders) > max_depth:
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
    return resource_type


def invalid(issues: list[Issue]) -> InvalidResource:
    """The 400 listing ``issues`` (at most :data:`MAX_ISSUES`), the first one as its message."""
    first = issues[0]
    error = InvalidResource(first.diagnostics, issue_code=first.code, expression=[first.expression])
    error.extra["issues"] = [issue.as_fhir() for issue in issues[:MAX_ISSUES]]
    return error


def validate_resource(
    resource: Any,
    *,
    expected_type: str | None = None,
    max_depth: int = 64,
    bases: Callable[[], LocalBases] | None = None,
) -> str:
    """Check ``resource`` (:func:`check_envelope`; with ``bases``, its references brought to
    their canonical form in place, as :func:`canonicalize_references` does; then R4); return
    its type. Raises :class:`InvalidResource` (400) with every issue found."""
    holders: list[dict[str, Any]] | None = [] if bases is not None else None
    resource_type = check_envelope(
        resource, expected_type=expected_type, max_depth=max_depth, holders=holders
    )
    if holders is not None and bases is not None:
        canonicalize_holders(resource, resource_type, holders, bases)
    issues = shared_validator().validate(resource)
    if issues:
        raise invalid(issues)
    return resource_type
