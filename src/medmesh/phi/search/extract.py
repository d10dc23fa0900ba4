"""Index rows of a resource: the values its search parameters read, as table rows.

Blind parameters become keyed tokens here (``PhiProtection.blind_index``), so a
name, identifier, phone number, e-mail or postal code never reaches the index tables.

References are indexed only in their canonical local form ``Type/id`` (writers bring them
to it first, :mod:`medmesh.phi.fhir.references`); external URLs, ``#contained`` references
and placeholders are not indexed, so a reference to another server's ``Patient/B`` is never
found as this server's. Reference search values get the same treatment
(:func:`canonical_search_params`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medmesh.phi.fhir.references import LocalBases, canonical_search_value, parse_canonical
from medmesh.phi.search.dates import MAX_DATE, MIN_DATE, date_range
from medmesh.phi.search.definitions import (
    DATE,
    INDEXED,
    REFERENCE,
    STRING,
    TOKEN,
    SearchParamDef,
    parameters_of,
)
from medmesh.phi.search.models import VALUE_LENGTH
from medmesh.phi.search.params import ADDRESS_PARTS, NAME_PARTS
from medmesh.platform.crypto import BlindIndex

#: Starts-with search reads prefixes of at most this many characters.
MAX_PREFIX = 48


@dataclass
class IndexRows:
    strings: set[tuple[str, str]] = field(default_factory=set)
    tokens: set[tuple[str, str, str]] = field(default_factory=set)
    dates: set[tuple[str, datetime, datetime]] = field(default_factory=set)
    references: set[tuple[str, str, str]] = field(default_factory=set)


def walk(value: Any, path: str) -> Iterator[Any]:
    """Every value under a dotted ``path`` (lists flattened; ``name[x]`` matches choice elements)."""
    head, _, rest = path.partition(".")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        if head.endswith("[x]"):
            stem = head[:-3]
            found = [
                v for k, v in item.items() if k.startswith(stem) and k[len(stem) :][:1].isupper()
            ]
        else:
            found = [item[head]] if head in item else []
        for child in found:
            if rest:
                yield from walk(child, rest)
            elif isinstance(child, list):
                yield from child
            else:
                yield child


def parse_reference(text: str) -> tuple[str, str] | None:
    """``(type, id)`` of a canonical local reference (``Type/id``, ``Type/id/_history/v``);
    None for anything else (an absolute URL is local only once made canonical)."""
    target = parse_canonical(text)
    return (target.resource_type, target.id) if target is not None else None


def canonical_search_params(
    resource_type: str, params: list[tuple[str, str]], bases: Callable[[], LocalBases]
) -> list[tuple[str, str]]:
    """``params`` with the values of reference parameters in canonical form: an absolute URL
    under one of this server's bases becomes ``Type/id`` (``subject=http://host/fhir/Patient/B``
    finds what ``subject=Patient/B`` finds); other values are left as they are."""
    known = parameters_of(resource_type)
    out = params
    for i, (name, value) in enumerate(params):
        pname, _, modifier = name.partition(":")
        definition = known.get(pname)
        if (
            definition is None
            or definition.type != REFERENCE
            or modifier == "missing"
            or "." in name
            or "://" not in value
            or "\\" in value
        ):
            continue
        fixed = ",".join(canonical_search_value(v, bases) for v in value.split(","))
        if fixed != value:
            if out is params:
                out = list(params)
            out[i] = (name, fixed)
    return out


def phone_digits(value: str) -> str:
    digits = "".join(ch for ch in value if "0" <= ch <= "9")
    return digits or value


def _cut(value: str) -> str:
    return value[:VALUE_LENGTH]


def _strings_of(value: Any, parts: tuple[str, ...] | None) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        keys = parts or (
            NAME_PARTS if any(k in value for k in ("family", "given")) else ADDRESS_PARTS
        )
        for key in keys:
            part = value.get(key)
            for item in part if isinstance(part, list) else [part]:
                if isinstance(item, str):
                    yield item


def _codes_of(value: Any, definition: SearchParamDef) -> Iterator[tuple[str, str]]:
    """``(system, code)`` pairs of a code, Coding, CodeableConcept, Identifier or ContactPoint."""
    if isinstance(value, bool):
        yield "", "true" if value else "false"
    elif isinstance(value, str):
        yield "", value
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value.get("coding") or []:
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    yield str(coding.get("system") or ""), coding["code"]
        elif isinstance(value.get("code"), str):
            yield str(value.get("system") or ""), value["code"]
        elif isinstance(value.get("value"), str):
            if "telecom" in definition.paths:
                if definition.telecom_system in (None, value.get("system")):
                    yield "", value["value"]
            else:
                yield str(value.get("system") or ""), value["value"]


def blind_code(blind: BlindIndex, definition: SearchParamDef, code: str) -> str:
    """The stored (and searched) form of a blind token parameter's value."""
    return blind.token(phone_digits(code) if definition.telecom_system == "phone" else code)


def _date_of(value: Any) -> tuple[datetime, datetime] | None:
    if isinstance(value, str):
        return date_range(value)
    if isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        if start is None and end is None:
            return None
        return (start[0] if start else MIN_DATE), (end[1] if end else MAX_DATE)
    return None


#: A parameter and the top-level elements its paths start from (plain names, choice stems).
_Plan = tuple[SearchParamDef, frozenset[str], tuple[str, ...]]


@functools.cache
def _plan(resource_type: str) -> tuple[_Plan, ...]:
    plans = []
    for definition in INDEXED.get(resource_type, ()):
        heads = [path.partition(".")[0] for path in definition.paths]
        plain = frozenset(h for h in heads if not h.endswith("[x]"))
        stems = tuple(h[:-3] for h in heads if h.endswith("[x]"))
        plans.append((definition, plain, stems))
    return tuple(plans)


def index_rows(resource_type: str, resource: dict[str, Any], blind: BlindIndex) -> IndexRows:
    rows = IndexRows()
    present = resource.keys()
    for definition, plain, stems in _plan(resource_type):
        # Most parameters of a type read elements a resource lacks: skip them before walking.
        if plain.isdisjoint(present) and not (
            stems and any(key.startswith(stem) for stem in stems for key in present)
        ):
            continue
        key = definition.index_key
        values = [v for path in definition.paths for v in walk(resource, path)]
        if definition.type == STRING:
            for value in values:
                for text in _strings_of(value, definition.parts):
                    if not text.strip():
                        continue
                    rows.strings.add((key, blind.token(text)))
                    rows.strings.update((key, t) for t in blind.prefix_tokens(text, 1, MAX_PREFIX))
        elif definition.type == TOKEN:
            for value in values:
                for system, code in _codes_of(value, definition):
                    stored = blind_code(blind, definition, code) if definition.blind else code
                    rows.tokens.add((key, _cut(system), _cut(stored)))
        elif definition.type == DATE:
            for value in values:
                span = _date_of(value)
                if span is not None:
                    rows.dates.add((key, *span))
        elif definition.type == REFERENCE:
            for value in values:
                ref = value.get("reference") if isinstance(value, dict) else None
                target = parse_canonical(ref) if isinstance(ref, str) else None
                if target is not None:
                    rows.references.add((key, target.resource_type, target.id))
    return rows


__all__ = [
    "TOKEN",
    "IndexRows",
    "blind_code",
    "canonical_search_params",
    "index_rows",
    "parse_reference",
    "phone_digits",
    "walk",
]
