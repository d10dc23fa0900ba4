"""What R4 requires that its JSON Schema cannot say, checked in one walk over a resource.

From the element model of the definitions, for every element at any depth:

- ``null``, ``""``, ``[]`` and ``{}`` are refused (R4 JSON §2.6.2: no empty values); a
  ``null`` is kept only where a primitive array aligns it with its ``_field`` extensions;
- ``_field`` extensions of primitives align with their values (same length, no position empty
  in both) and carry an extension where the value is absent (ele-1);
- at most one element of a choice (``value[x]``); the required ones present;
- required primitives present (``status``: the schema cannot require it, since ``_status``
  alone may carry it);
- integers are JSON integers within their range; dates are calendar dates;
- every required binding, nested ones included: a ``code`` among its value set's codes, a
  Coding's system and code in it, a CodeableConcept with such a Coding;
- a Reference's shape, the resource type it names and whether R4 allows that type there
  (``Observation.subject``: Patient, Group, Device or Location);
- narrative XHTML (:mod:`medmesh.phi.fhir.r4.xhtml`);
- invariants: ele-1 (an element has a value or children), ext-1 (an extension has a value or
  extensions, not both), dom-2 (a contained resource contains none) and dom-4 (nor a version
  or update time in its meta).

Elements the model does not know are left to the schema, which refuses them.
"""

from __future__ import annotations

import calendar
import re
from decimal import Decimal
from typing import Any

from medmesh.phi.fhir.r4.bindings import coding_in, concept_in
from medmesh.phi.fhir.r4.definitions import Definitions, ElementInfo
from medmesh.phi.fhir.r4.outcome import Issue, Path, error, path_text
from medmesh.phi.fhir.r4.references import referenced_type
from medmesh.phi.fhir.r4.schema import CompiledSchema
from medmesh.phi.fhir.r4.xhtml import narrative_problem

_INT32 = 2**31 - 1
_INTEGERS = {"integer": -(2**31), "positiveInt": 1, "unsignedInt": 0}
_DATES = frozenset({"date", "dateTime", "instant"})
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_STRUCTURE_DEFINITION = "http://hl7.org/fhir/StructureDefinition/"


class ResourceWalk:
    """One validation's walk: its issues, and whether the schema's own errors are wanted."""

    def __init__(self, definitions: Definitions, schema: CompiledSchema, explain: bool) -> None:
        self.types = definitions.types
        self.resource_types = definitions.resource_types
        self.required_primitives = definitions.required_primitives
        self.required_choices = definitions.required_choices
        self.schema = schema
        self.explain = explain
        self.issues: list[Issue] = []
        #: The schema's errors of every resource walked (only when :attr:`explain`).
        self.schema_issues: list[Issue] = []
        #: Paths of nulls that align with a ``_field`` extension (the schema refuses them).
        self.aligned_nulls: set[str] = set()

    def resource(self, resource: dict[str, Any], path: Path) -> None:
        """Check ``resource`` and what it nests; its issues go to :attr:`issues`."""
        resource_type = resource.get("resourceType")
        if type(resource_type) is not str or resource_type not in self.resource_types:
            self.issues.append(error("not-supported", path, "not a resource type of FHIR R4"))
            return
        if self.explain:
            self.schema_issues.extend(self.schema.errors(resource, path))
        self.element(resource, resource_type, path, True)

    def element(self, value: dict[str, Any], owner: str, path: Path, is_resource: bool) -> None:
        elements = self.types.get(owner)
        if elements is None:
            return
        issues = self.issues
        chosen: dict[str, str] | None = None
        for key, item in value.items():
            info = elements.get(key)
            if info is None:
                if key[0] == "_":
                    info = elements.get(key[1:])
                    if info is not None and info.primitive:
                        if info.choice and key[1:] not in value:
                            chosen = self._choose(chosen, info, key, path)
                        self._extensions(value, key, item, info, path)
                continue  # resourceType, or an element the schema refuses
            if info.choice:
                chosen = self._choose(chosen, info, key, path)
            kind_of_item = type(item)
            if info.many:
                if kind_of_item is not list:
                    if item is None:
                        issues.append(error("structure", (path, key), "null is not a FHIR value"))
                    continue  # the schema refuses anything else
                if not item:
                    issues.append(error("structure", (path, key), "empty array"))
                    continue
                if info.primitive:
                    aligned = value.get("_" + key)
                    for index, entry in enumerate(item):
                        if type(entry) is str and entry and not info.checked:
                            continue
                        if entry is None:
                            self._null_entry(aligned, index, ((path, key), index))
                        else:
                            self._primitive(entry, info, ((path, key), index))
                else:
                    for index, entry in enumerate(item):
                        if entry is None:
                            self._null_entry(None, index, ((path, key), index))
                        else:
                            self.value(entry, info, ((path, key), index))
                    if is_resource and key == "contained":
                        self._contained(item, (path, key))
            elif info.primitive:
                if kind_of_item is str and item and not info.checked:
                    continue
                if item is None:
                    issues.append(error("structure", (path, key), "null is not a FHIR value"))
                else:
                    self._primitive(item, info, (path, key))
            elif item is None:
                issues.append(error("structure", (path, key), "null is not a FHIR value"))
            else:
                self.value(item, info, (path, key))
        for name in self.required_primitives.get(owner, ()):
            if name not in value and "_" + name not in value:
                issues.append(error("required", (path, name), "required element is missing"))
        for group in self.required_choices.get(owner, ()):
            if chosen is None or group not in chosen:
                issues.append(
                    error("required", (path, f"{group}[x]"), "required element is missing")
                )
        if owner == "Extension" and (chosen is not None and "value" in chosen) == (
            "extension" in value
        ):
            issues.append(
                error("invariant", path, "an extension has a value or extensions, not both (ext-1)")
            )

    def _choose(
        self, chosen: dict[str, str] | None, info: ElementInfo, key: str, path: Path
    ) -> dict[str, str]:
        if chosen is None:
            return {info.choice: key}
        if info.choice in chosen:
            self.issues.append(
                error("structure", (path, key), f"{info.choice}[x] holds more than one value")
            )
        else:
            chosen[info.choice] = key
        return chosen

    def value(self, value: Any, info: ElementInfo, path: Path) -> None:
        """Check one value of the element ``info`` (an array's entry, or the element's value)."""
        kind = info.kind
        if info.primitive:
            self._primitive(value, info, path)
            return
        if type(value) is not dict:
            return  # the schema refuses it
        if not value:
            self.issues.append(error("structure", path, "empty object"))
            return
        if kind == "Resource":
            self.resource(value, path)
            return
        self.element(value, kind, path, False)
        if len(value) == 1 and "id" in value:
            self.issues.append(
                error("invariant", path, "an element has a value or children (ele-1)")
            )
        binding = info.binding
        if binding is not None:
            if kind == "CodeableConcept" and not concept_in(binding, value):
                self.issues.append(
                    error("code-invalid", path, "no coding of its required value set")
                )
            elif kind == "Coding" and not coding_in(binding, value):
                self.issues.append(
                    error("code-invalid", path, "not a coding of its required value set")
                )
        if kind == "Reference":
            self._reference(value, info, path)

    def _primitive(self, value: Any, info: ElementInfo, path: Path) -> None:
        kind = info.kind
        kind_of_value = type(value)
        if kind_of_value is str:
            if not value:
                self.issues.append(error("structure", path, "empty string"))
            elif info.codes is not None:
                if value not in info.codes:
                    self.issues.append(
                        error("code-invalid", path, "not a code of its required value set")
                    )
            elif kind in _DATES:
                found = _DATE.match(value)
                # Every month has day 28: only a later day needs the month's length.
                if found is not None and int(found[3]) > 28:
                    year, month, day = (int(part) for part in found.groups())
                    if 1 <= month <= 12 and day > calendar.monthrange(year, month)[1]:
                        self.issues.append(
                            error("value", path, f"not a valid {kind} (no such day)")
                        )
            elif kind == "xhtml":
                problem = narrative_problem(value)
                if problem is not None:
                    self.issues.append(error("invariant", path, problem))
        elif kind in _INTEGERS:
            if kind_of_value is float or kind_of_value is Decimal:
                self.issues.append(error("structure", path, f"wrong JSON type for {kind}"))
            elif kind_of_value is int and not _INTEGERS[kind] <= value <= _INT32:
                self.issues.append(error("value", path, f"out of the range of {kind}"))
        elif kind_of_value is Decimal and not value.is_finite():
            self.issues.append(error("value", path, f"not a valid {kind}"))

    def _extensions(
        self, value: dict[str, Any], key: str, extensions: Any, info: ElementInfo, path: Path
    ) -> None:
        """A primitive's ``_field``: aligned with the values, an extension where none is."""
        where: Path = (path, key)
        if extensions is None:
            self.issues.append(error("structure", where, "null is not a FHIR value"))
            return
        values = value.get(key[1:])
        if not info.many:
            self._primitive_element(extensions, values is not None, where)
            return
        if type(extensions) is not list:
            return  # the schema refuses it
        if not extensions:
            self.issues.append(error("structure", where, "empty array"))
            return
        if type(values) is list and len(values) != len(extensions):
            self.issues.append(
                error("structure", where, f"does not align with {key[1:]} (not the same length)")
            )
            return
        for index, entry in enumerate(extensions):
            present = type(values) is list and values[index] is not None
            if entry is None:
                if not present:
                    self.issues.append(
                        error("structure", (where, index), "neither a value nor an extension")
                    )
                continue
            self._primitive_element(entry, present, (where, index))

    def _primitive_element(self, element: Any, has_value: bool, path: Path) -> None:
        if type(element) is not dict:
            return  # the schema refuses it
        if not element:
            self.issues.append(error("structure", path, "empty object"))
            return
        extensions = element.get("extension")
        if type(extensions) is list:
            info = self.types["Extension"]["extension"]
            if not extensions:
                self.issues.append(error("structure", (path, "extension"), "empty array"))
            for index, entry in enumerate(extensions):
                self.value(entry, info, ((path, "extension"), index))
        elif not has_value:
            self.issues.append(
                error("invariant", path, "an element has a value or children (ele-1)")
            )

    def _null_entry(self, aligned: Any, index: int, path: Path) -> None:
        if type(aligned) is list and index < len(aligned) and aligned[index] is not None:
            if self.explain:
                self.aligned_nulls.add(path_text(path))
            return
        self.issues.append(error("structure", path, "null is not a FHIR value"))

    def _contained(self, contained: list[Any], path: Path) -> None:
        for index, resource in enumerate(contained):
            if type(resource) is not dict:
                continue
            if "contained" in resource:
                self.issues.append(
                    error(
                        "invariant",
                        ((path, index), "contained"),
                        "a contained resource contains no resources (dom-2)",
                    )
                )
            meta = resource.get("meta")
            if type(meta) is dict and ("versionId" in meta or "lastUpdated" in meta):
                self.issues.append(
                    error(
                        "invariant",
                        ((path, index), "meta"),
                        "a contained resource has no versionId or lastUpdated (dom-4)",
                    )
                )

    def _reference(self, value: dict[str, Any], info: ElementInfo, path: Path) -> None:
        targets = info.targets
        reference = value.get("reference")
        if type(reference) is str and reference:
            named = referenced_type(reference)
            if named is None:
                self.issues.append(
                    error(
                        "value",
                        (path, "reference"),
                        "not a reference R4 allows (Type/id, an absolute URL, #id or a URN)",
                    )
                )
            elif named:
                self._target(named, targets, (path, "reference"))
        named_type = value.get("type")
        if type(named_type) is str and named_type:
            if named_type.startswith(_STRUCTURE_DEFINITION):
                named_type = named_type[len(_STRUCTURE_DEFINITION) :]
            if "/" not in named_type and ":" not in named_type:
                self._target(named_type, targets, (path, "type"))

    def _target(self, named: str, targets: frozenset[str] | None, path: Path) -> None:
        if named not in self.resource_types:
            self.issues.append(error("value", path, "names no resource type of FHIR R4"))
        elif targets is not None and named not in targets:
            allowed = "|".join(sorted(targets))
            self.issues.append(error("value", path, f"may refer to {allowed} only, not {named}"))
