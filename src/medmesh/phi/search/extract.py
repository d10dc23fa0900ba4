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
#: Prefixes of at most this many characters are in the lookup index (``IndexRows.lookup``).
LOOKUP_PREFIX = 3


@dataclass
class IndexRows:
    strings: set[tuple[str, str]] = field(default_factory=set)
    #: The ``strings`` that go in the lookup index: prefixes of at most ``LOOKUP_PREFIX``.
    lookup: set[tuple[str, str]] = field(default_factory=set)
    tokens: set[tuple[str, str, str]] = field(default_factory=set)
    dates: set[tuple[str, datetime, datetime]] = field(default_factory=set)
    references: set[tuple[str, str, str]] = field(default_factory=set)


#: A string index row: resource type, resource id, parameter, token, in the lookup index.
StringValues = tuple[str, str, str, str, bool]
#: A token index row: resource type, resource id, parameter, system, code.
TokenValues = tuple[str, str, str, str, str]
#: A date index row: resource type, resource id, parameter, low, high.
DateValues = tuple[str, str, str, datetime, datetime]
#: A reference index row: resource type, resource id, parameter, target type, target id.
ReferenceValues = tuple[str, str, str, str, str]
#: A resource's index rows as its four tables' rows, columns in the tables' order: what the
#: inserts bind, and what a preparation worker sends (plain tuples cost less to pickle and
#: unpickle than :class:`IndexRows`).
IndexValues = tuple[list[StringValues], list[TokenValues], list[DateValues], list[ReferenceValues]]


def index_values(resource_type: str, resource_id: str, rows: IndexRows) -> IndexValues:
    """``rows`` of ``resource_type/resource_id`` as its index tables' rows."""
    lookup = rows.lookup
    return (
        [(resource_type, resource_id, p, t, (p, t) in lookup) for p, t in rows.strings],
        [(resource_type, resource_id, p, s, c) for p, s, c in rows.tokens],
        [(resource_type, resource_id, p, lo, hi) for p, lo, hi in rows.dates],
        [(resource_type, resource_id, p, t, i) for p, t, i in rows.references],
    )


def _is_choice(key: str, stem: str) -> bool:
    """Whether element ``key`` is a choice of ``stem[x]`` (``effectiveDateTime`` of ``effective``)."""
    return key.startswith(stem) and key[len(stem) :][:1].isupper()


def walk(value: Any, path: str) -> Iterator[Any]:
    """Every value under a dotted ``path`` (lists flattened; ``name[x]`` matches choice elements)."""
    head, _, rest = path.partition(".")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        if head.endswith("[x]"):
            stem = head[:-3]
            found = [v for k, v in item.items() if _is_choice(k, stem)]
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


#: A compiled path: its steps, each an element name and whether it is a choice stem
#: (``effective`` of ``effective[x]``).
_Steps = tuple[tuple[str, bool], ...]
#: What a type's index rows need: the parameters with their compiled paths, which parameters
#: each top-level element name feeds, and which each choice stem feeds.
_Plan = tuple[
    tuple[tuple[SearchParamDef, tuple[_Steps, ...]], ...],
    dict[str, tuple[int, ...]],
    tuple[tuple[str, tuple[int, ...]], ...],
]


def _steps(path: str) -> _Steps:
    return tuple(
        (part[:-3], True) if part.endswith("[x]") else (part, False) for part in path.split(".")
    )


@functools.cache
def _plan(resource_type: str) -> _Plan:
    parameters = []
    by_head: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for position, definition in enumerate(INDEXED.get(resource_type, ())):
        compiled = tuple(_steps(path) for path in definition.paths)
        parameters.append((definition, compiled))
        for steps in compiled:
            name, choice = steps[0]
            heads = by_stem if choice else by_head
            if position not in heads.setdefault(name, []):
                heads[name].append(position)
    return (
        tuple(parameters),
        {name: tuple(found) for name, found in by_head.items()},
        tuple((stem, tuple(found)) for stem, found in by_stem.items()),
    )


def _collect(value: Any, steps: _Steps, at: int, out: list[Any]) -> None:
    """Append every value under ``steps[at:]`` of ``value`` to ``out`` (what :func:`walk`
    yields, in the same order)."""
    name, choice = steps[at]
    last = at + 1 == len(steps)
    for item in value if isinstance(value, list) else (value,):
        if not isinstance(item, dict):
            continue
        if choice:
            found = [v for k, v in item.items() if _is_choice(k, name)]
        elif name in item:
            found = [item[name]]
        else:
            continue
        for child in found:
            if not last:
                _collect(child, steps, at + 1, out)
            elif isinstance(child, list):
                out.extend(child)
            else:
                out.append(child)


def _chosen(resource_type: str, resource: dict[str, Any]) -> list[int]:
    """The positions of the parameters of the type whose paths start at an element
    ``resource`` has (the others read nothing), in the catalogue's order."""
    _, by_head, by_stem = _plan(resource_type)
    chosen: set[int] = set()
    for key in resource:
        found = by_head.get(key)
        if found is not None:
            chosen.update(found)
        for stem, positions in by_stem:
            if _is_choice(key, stem):
                chosen.update(positions)
    return sorted(chosen)


def index_rows(resource_type: str, resource: dict[str, Any], blind: BlindIndex) -> IndexRows:
    rows = IndexRows()
    parameters = _plan(resource_type)[0]
    strings, lookup, tokens = rows.strings, rows.lookup, rows.tokens
    dates, references = rows.dates, rows.references
    for position in _chosen(resource_type, resource):
        definition, paths = parameters[position]
        key = definition.index_key
        values: list[Any] = []
        for steps in paths:
            _collect(resource, steps, 0, values)
        if not values:
            continue
        kind = definition.type
        if kind == TOKEN:
            for value in values:
                for system, code in _codes_of(value, definition):
                    stored = blind_code(blind, definition, code) if definition.blind else code
                    tokens.add((key, _cut(system), _cut(stored)))
        elif kind == REFERENCE:
            for value in values:
                ref = value.get("reference") if isinstance(value, dict) else None
                target = parse_canonical(ref) if isinstance(ref, str) else None
                if target is not None:
                    references.add((key, target.resource_type, target.id))
        elif kind == DATE:
            for value in values:
                span = _date_of(value)
                if span is not None:
                    dates.add((key, *span))
        elif kind == STRING:
            for value in values:
                for text in _strings_of(value, definition.parts):
                    if not text.strip():
                        continue
                    strings.add((key, blind.token(text)))
                    prefixes = [(key, t) for t in blind.prefix_tokens(text, 1, MAX_PREFIX)]
                    strings.update(prefixes)
                    lookup.update(prefixes[:LOOKUP_PREFIX])
    return rows


__all__ = [
    "LOOKUP_PREFIX",
    "TOKEN",
    "IndexRows",
    "IndexValues",
    "blind_code",
    "canonical_search_params",
    "index_rows",
    "index_values",
    "parse_reference",
    "phone_digits",
    "walk",
]
