"""Index rows of a resource: the values its search parameters read, as table rows.

Blind parameters become keyed tokens here (``PhiProtection.blind_index``), so a
name, identifier, phone number, e-mail or postal code never reaches the index tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medmesh.phi.search.dates import MAX_DATE, MIN_DATE, date_range
from medmesh.phi.search.definitions import DATE, INDEXED, REFERENCE, STRING, TOKEN, SearchParamDef
from medmesh.phi.search.models import VALUE_LENGTH
from medmesh.phi.search.params import ADDRESS_PARTS, NAME_PARTS
from medmesh.platform.crypto import BlindIndex

#: Starts-with search reads prefixes of at most this many characters.
MAX_PREFIX = 48
_REFERENCE = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$"
)


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
    """``(type, id)`` of a literal reference (relative, absolute or versioned)."""
    match = _REFERENCE.search(text)
    return (match["type"], match["id"]) if match else None


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


def index_rows(resource_type: str, resource: dict[str, Any], blind: BlindIndex) -> IndexRows:
    rows = IndexRows()
    for definition in INDEXED.get(resource_type, ()):
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
                target = parse_reference(ref) if isinstance(ref, str) else None
                if target is not None:
                    rows.references.add((key, *target))
    return rows


__all__ = [
    "TOKEN",
    "IndexRows",
    "blind_code",
    "index_rows",
    "parse_reference",
    "phone_digits",
    "walk",
]
