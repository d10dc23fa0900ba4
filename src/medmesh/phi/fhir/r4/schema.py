"""R4's JSON Schema compiled once with jsonschema-rs, and its errors as issues.

The whole schema (every resource type through its root ``oneOf``) answers whether a resource
is valid in one native call. Only when it is not, the resource is checked again against the
definition of its own type, compiled on first need with nested resources (``contained``,
``Bundle.entry.resource``) left open: the root ``oneOf`` would report one error for the whole
resource, the type's own definition reports each element. Nested resources are explained the
same way by the walk that finds them (:mod:`medmesh.phi.fhir.r4.rules`).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import jsonschema_rs

from medmesh.phi.fhir.r4.definitions import Definitions
from medmesh.phi.fhir.r4.outcome import Issue, Path, error

_MASK = "(value)"
#: An element name worth repeating in a path; any other key is not named (it may be data).
_ELEMENT_NAME = re.compile(
    r"_?[A-Za-z][A-Za-z0-9_]{0,63}"
)  # jsonschema-rs puts this in its messages instead of the submitted value


class CompiledSchema:
    """The compiled R4 schema: a fast verdict, and per-element errors on demand."""

    def __init__(self, definitions: Definitions) -> None:
        schema = definitions.schema
        self._draft = schema["$schema"]
        self._root = jsonschema_rs.Draft6Validator(schema, mask=_MASK)
        self._open = {**schema["definitions"], "ResourceList": {"type": "object"}}
        self._types = definitions.resource_types
        # A choice's primitive by the suffix of its JSON name: "DateTime" -> "dateTime".
        self._suffixes = sorted(
            ((p[0].upper() + p[1:], p) for p in definitions.primitives),
            key=lambda pair: -len(pair[0]),
        )
        self._by_type: dict[str, Any] = {}
        self._lock = threading.Lock()

    def is_valid(self, resource: dict[str, Any]) -> bool:
        """Whether ``resource`` and every resource nested in it satisfy the schema."""
        return bool(self._root.is_valid(resource))

    def _validator(self, resource_type: str) -> Any:
        found = self._by_type.get(resource_type)
        if found is None:
            with self._lock:
                found = self._by_type.get(resource_type)
                if found is None:
                    own = {
                        "$schema": self._draft,
                        "definitions": self._open,
                        "$ref": f"#/definitions/{resource_type}",
                    }
                    found = self._by_type[resource_type] = jsonschema_rs.Draft6Validator(
                        own, mask=_MASK
                    )
        return found

    def errors(self, resource: dict[str, Any], path: Path) -> list[Issue]:
        """The schema's errors of ``resource`` itself (not of the resources nested in it)."""
        resource_type = resource.get("resourceType")
        if resource_type not in self._types:
            return []  # the walk reports an unknown or missing resourceType
        issues: list[Issue] = []
        for found in self._validator(str(resource_type)).iter_errors(resource):
            where: Path = path
            for step in found.instance_path:
                where = (where, step)
            issues.extend(self._issues(found, where))
        return issues

    def _issues(self, found: Any, where: Path) -> list[Issue]:
        kind = found.kind
        name = type(kind).__name__
        if name == "AdditionalProperties":
            return [
                error("structure", (where, n), "unknown element")
                if _ELEMENT_NAME.fullmatch(n)
                else error("structure", where, "holds an element whose name is no FHIR name")
                for n in kind.unexpected
            ]
        if name == "Required":
            return [error("required", (where, str(kind.property)), "required element is missing")]
        if name == "Enum":
            return [error("code-invalid", where, "not a code of its required value set")]
        if name == "Type":
            wanted = self._primitive(found.schema_path) or "its type"
            return [error("structure", where, f"wrong JSON type for {wanted}")]
        if name == "Pattern":
            return [error("value", where, f"not a valid {self._primitive(found.schema_path)}")]
        if name == "Const":
            return [error("value", where, "not the value its definition fixes")]
        return [error("structure", where, f"does not satisfy the schema ({kind.name})")]

    def _primitive(self, schema_path: list[Any]) -> str:
        """The primitive type a keyword checks: ``dateTime`` for ``definitions/dateTime/type``
        and, the schema writing choices' primitives inline, for
        ``definitions/Observation/properties/effectiveDateTime/pattern``."""
        if len(schema_path) == 3 and schema_path[0] == "definitions":
            return str(schema_path[1])
        if len(schema_path) >= 3 and schema_path[-3] == "properties":
            element = str(schema_path[-2])
            for suffix, primitive in self._suffixes:
                if element.endswith(suffix):
                    return primitive
        return "value"
