"""The vendored R4 4.0.1 definitions (``data/``, see ``data/SOURCE.md``), loaded once.

:class:`Definitions` holds the JSON Schema, the element model (every resource, data type and
backbone element with its elements) and the codes of the value sets of required bindings.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson


def _data(name: str) -> Any:
    packed = resources.files("medmesh.phi.fhir.r4").joinpath("data", name).read_bytes()
    return orjson.loads(gzip.decompress(packed))


_PLAIN = frozenset(
    {"base64Binary", "boolean", "canonical", "code", "id", "markdown", "oid", "string", "time"}
    | {"uri", "url", "uuid"}
)


class ElementInfo:
    """One element of a type: what it holds and the rules on it."""

    __slots__ = (
        "binding",
        "checked",
        "choice",
        "codes",
        "kind",
        "many",
        "name",
        "primitive",
        "required",
        "targets",
    )

    def __init__(
        self, name: str, spec: list[Any], primitives: frozenset[str], value_sets: dict[str, Any]
    ) -> None:
        kind, minimum, many, choice, binding, targets = spec
        self.name: str = name
        self.kind: str = kind
        self.required: bool = minimum > 0
        self.many: bool = many
        self.choice: str = choice
        self.primitive: bool = kind in primitives
        #: The codes of its required binding by system; None when unbound or not enumerable.
        self.binding: dict[str, frozenset[str]] | None = value_sets.get(binding)
        #: The codes of every system of the binding, for a ``code`` element (its system is
        #: implied by the element).
        self.codes: frozenset[str] | None = (
            None if self.binding is None else frozenset().union(*self.binding.values())
        )
        self.targets: frozenset[str] | None = (
            None if not targets or "Resource" in targets else frozenset(targets)
        )
        #: Whether a value needs more than the schema's check and a non-empty string: a
        #: binding, a calendar date, narrative, an integer's range or a decimal's finiteness.
        self.checked: bool = (
            self.binding is not None or kind not in _PLAIN if self.primitive else True
        )


@dataclass(frozen=True)
class Definitions:
    """R4's schema, element model and required value sets."""

    schema: dict[str, Any]
    resource_types: frozenset[str]
    primitives: frozenset[str]
    types: dict[str, dict[str, ElementInfo]]
    #: ``{type: [element, ...]}``: the primitive elements of a type that must be present (the
    #: schema cannot require them, since ``_status`` alone may carry them).
    required_primitives: dict[str, tuple[str, ...]]
    #: ``{type: [choice, ...]}``: the ``[x]`` elements of a type that must be present once.
    required_choices: dict[str, tuple[str, ...]]
    #: ``{value set: {system: codes}}``; None for the value sets the definitions do not
    #: enumerate (mimetypes, currencies, UCUM units, one LOINC answer list).
    value_sets: dict[str, dict[str, frozenset[str]] | None]
    compartments: dict[str, Any]


@functools.cache
def definitions() -> Definitions:
    """The definitions, read and indexed on first use."""
    model = _data("elements.json.gz")
    value_sets: dict[str, dict[str, frozenset[str]] | None] = {
        url: None if codes is None else {system: frozenset(c) for system, c in codes.items()}
        for url, codes in _data("valuesets.json.gz").items()
    }
    primitives = frozenset(model["primitives"])
    types = {
        owner: {name: ElementInfo(name, spec, primitives, value_sets) for name, spec in els.items()}
        for owner, els in model["types"].items()
    }
    required = {
        owner: tuple(
            info.name
            for info in els.values()
            if info.required and info.primitive and not info.choice
        )
        for owner, els in types.items()
    }
    choices = {
        owner: tuple(
            sorted({info.choice for info in els.values() if info.required and info.choice})
        )
        for owner, els in types.items()
    }
    return Definitions(
        schema=_data("fhir.schema.json.gz"),
        resource_types=frozenset(model["resources"]),
        primitives=primitives,
        types=types,
        required_primitives={owner: names for owner, names in required.items() if names},
        required_choices={owner: names for owner, names in choices.items() if names},
        value_sets=value_sets,
        compartments=_data("compartments.json.gz"),
    )


@functools.cache
def compartment_definitions() -> dict[str, Any]:
    """R4's CompartmentDefinitions alone (``compartments.json.gz``), without the rest."""
    loaded: dict[str, Any] = _data("compartments.json.gz")
    return loaded
