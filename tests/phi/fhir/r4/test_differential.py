"""The R4 validator against the one phi used before (fhir.resources' R4B models plus the
bindings they skip, kept in :mod:`tests.phi.fhir.r4.r4b_validator` as a second opinion).

On every conformance resource and on thousands of seeded mutations of them, both refuse or
both accept, except where the test names the difference and R4's reading of it. None of the
differences found is between R4 and R4B themselves (on the 30 types the old validator knows,
R4B's models have R4's elements, plus ``fhir_comments``): each is a check the old validator
does not make.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.r4 import Issue, validate
from tests.phi.fhir.r4.conformance import conformance_resources
from tests.phi.fhir.r4.mutations import KINDS, mutate
from tests.phi.fhir.r4.r4b_validator import REQUIRED_CODES, SUPPORTED_TYPES, validate_resource

MUTATIONS = 3000

#: Each difference, by name, with R4's reading (what the R4 validator does).
DIFFERENCES = {
    "type unknown to the old validator": (
        "R4 has 146 resource types, each validated against its own definition; the old "
        "validator refuses all but 30 (here Bundle and OperationOutcome examples)"
    ),
    "empty array": "R4 JSON: an array is never empty; the old validator accepts []",
    "nested required binding": (
        "R4: every required binding holds, at any depth (Identifier.use, ContactPoint.system, "
        "Quantity.comparator, ...); the old validator checks 17 top-level elements"
    ),
    "number as a date": (
        "R4 JSON: date, dateTime and instant are strings; the old validator (pydantic's lax "
        "mode) reads a JSON number as a Unix time"
    ),
    "fhir_comments": "R4 has no fhir_comments element; fhir.resources accepts one anywhere",
}
_TOP_LEVEL_BOUND = {f"{rtype}.{element}" for rtype, element in REQUIRED_CODES}
_DATES = ("date", "dateTime", "instant")


def _old_accepts(resource: dict[str, Any]) -> bool:
    try:
        validate_resource(resource)
    except InvalidResource:
        return False
    return True


def _difference(resource: dict[str, Any], kind: str, issues: list[Issue]) -> str | None:
    """The named difference that explains a disagreement, or None."""
    if resource["resourceType"] not in SUPPORTED_TYPES:
        return "type unknown to the old validator"
    if not issues:
        return None  # the old validator refuses what R4 accepts: no such difference is known
    if all(i.diagnostics.endswith(": empty array") for i in issues):
        return "empty array"
    if all(i.code == "code-invalid" and i.expression not in _TOP_LEVEL_BOUND for i in issues):
        return "nested required binding"
    if kind == "wrong-type" and all(
        any(i.diagnostics.endswith(f"wrong JSON type for {d}") for d in _DATES) for i in issues
    ):
        return "number as a date"
    return None


def test_both_validators_agree_on_the_conformance_resources() -> None:
    differences: Counter[str] = Counter()
    for name, resource in conformance_resources():
        issues = validate(resource)
        if _old_accepts(resource) != (not issues):
            reason = _difference(resource, "", issues)
            assert reason is not None, (name, issues)
            differences[reason] += 1
    assert set(differences) <= {"type unknown to the old validator"}


def test_both_validators_agree_on_generated_mutations() -> None:
    rng = random.Random(20260104)
    resources = [r for _, r in conformance_resources()]
    differences: Counter[str] = Counter()
    agreed: Counter[tuple[str, bool]] = Counter()
    unexplained = []
    for round_ in range(MUTATIONS):
        kind = KINDS[round_ % len(KINDS)]
        mutated = mutate(rng.choice(resources), kind, rng)
        if mutated is None:
            continue
        issues = validate(mutated)
        accepted = not issues
        if _old_accepts(mutated) == accepted:
            agreed[(kind, accepted)] += 1
            continue
        reason = _difference(mutated, kind, issues)
        if reason is None:
            unexplained.append((kind, mutated["resourceType"], issues))
        else:
            differences[reason] += 1
    assert unexplained == []
    assert set(differences) <= set(DIFFERENCES)
    # Every kind of mistake was made, and both refused each kind many times.
    for kind in KINDS:
        assert agreed[(kind, False)] > 50 or kind in ("empty-array", "bad-code"), kind
    assert sum(agreed.values()) + sum(differences.values()) > 2000


def test_fhir_comments_is_r4b_models_own() -> None:
    resource = {"resourceType": "Patient", "fhir_comments": ["a"]}
    assert _old_accepts(resource)
    assert [(i.code, i.expression) for i in validate(resource)] == [
        ("structure", "Patient.fhir_comments")
    ]
