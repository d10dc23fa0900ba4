"""Validation of FHIR R4 (4.0.1) resources: the R4 JSON Schema, then R4's other rules.

:class:`Validator` compiles the definitions once (about a fifth of a second); :func:`validate`
uses one shared instance. Several issues are reported at once, each with its element's path.

Decimal precision is the parser's matter: JSON ``1.50`` parsed to a float is ``1.5`` before
any validator sees it. Parse with ``json.loads(..., parse_float=decimal.Decimal)`` to keep it;
the validator accepts :class:`decimal.Decimal` wherever R4 has a decimal.
"""

from __future__ import annotations

import functools
from typing import Any

from medmesh.phi.fhir.r4.definitions import Definitions, definitions
from medmesh.phi.fhir.r4.outcome import Issue, error
from medmesh.phi.fhir.r4.rules import ResourceWalk
from medmesh.phi.fhir.r4.schema import CompiledSchema


class Validator:
    """R4's schema compiled with jsonschema-rs and the element model, ready to check resources."""

    def __init__(self, loaded: Definitions | None = None) -> None:
        self.definitions = loaded or definitions()
        self.schema = CompiledSchema(self.definitions)

    @property
    def resource_types(self) -> frozenset[str]:
        """The 146 resource types of R4."""
        return self.definitions.resource_types

    def validate(self, resource: Any) -> list[Issue]:
        """Every problem of ``resource`` (a parsed JSON value); empty when it is valid R4."""
        if type(resource) is not dict:
            return [error("structure", "Resource", "a resource is a JSON object")]
        resource_type = resource.get("resourceType")
        root = resource_type if type(resource_type) is str else "Resource"
        explain = not self.schema.is_valid(resource)
        walk = ResourceWalk(self.definitions, self.schema, explain)
        walk.resource(resource, root if root in self.resource_types else "Resource")
        issues = walk.issues
        if explain:
            if not walk.schema_issues and not issues:  # never pass what the schema refused
                return [error("structure", root, "does not satisfy the R4 JSON Schema")]
            aligned = walk.aligned_nulls
            issues += [i for i in walk.schema_issues if i.expression not in aligned]
        return _unique(issues)


def _unique(issues: list[Issue]) -> list[Issue]:
    """One issue per element: the schema and a rule may both refuse the same value (the rule's,
    first, says more: ``null`` or an empty string rather than a wrong type)."""
    if len(issues) < 2:
        return issues
    seen: set[str] = set()
    kept = []
    for issue in issues:
        if issue.expression not in seen:
            seen.add(issue.expression)
            kept.append(issue)
    return kept


@functools.cache
def shared_validator() -> Validator:
    """The process's validator, compiled on first use."""
    return Validator()


def validate(resource: Any) -> list[Issue]:
    """Every problem of ``resource`` against FHIR R4 (see :class:`Validator`)."""
    return shared_validator().validate(resource)
