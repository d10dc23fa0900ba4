"""Parsing a FHIR search request into a :class:`SearchQuery` (no I/O).

Errors never echo a parameter's value (it may be PHI); names are fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.search.dates import date_range
from medmesh.phi.search.definitions import (
    DATE,
    REFERENCE,
    STRING,
    TOKEN,
    SearchParamDef,
    parameters_of,
)

DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap")
#: Result parameters this server understands.
CONTROL = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_total",
        "_page",
        "_format",
        "_pretty",
        "_elements",
    }
)
MODIFIERS = {
    STRING: {"exact", "missing"},
    TOKEN: {"not", "missing"},
    DATE: {"missing"},
    REFERENCE: {"missing"},
}
SORT_KEYS = frozenset({"_id", "_lastUpdated"})


class SearchError(InvalidResource):
    """A search request this server cannot run as asked (400)."""


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: str
    low: datetime
    high: datetime


@dataclass(frozen=True, slots=True)
class Chain:
    """``subject:Patient.identifier=...``: the referenced resources must match ``clause``."""

    #: (target type, the clause evaluated on that type) for each candidate type.
    targets: tuple[tuple[str, Clause], ...]


@dataclass(frozen=True, slots=True)
class Clause:
    """One ``name[:modifier]=v1,v2`` parameter: any value matches (OR); clauses are ANDed."""

    definition: SearchParamDef
    modifier: str | None
    values: tuple[str, ...]
    chain: Chain | None = None
    #: A resource type named as modifier of a reference (``subject:Patient``).
    target_type: str | None = None

    @property
    def missing(self) -> bool | None:
        if self.modifier != "missing":
            return None
        return self.values[0] == "true"


@dataclass(frozen=True, slots=True)
class IncludeSpec:
    source_type: str
    param: SearchParamDef
    target_type: str | None


@dataclass
class SearchQuery:
    resource_type: str
    clauses: list[Clause] = field(default_factory=list)
    count: int = 50
    sort: list[tuple[str, bool]] = field(default_factory=list)
    includes: list[IncludeSpec] = field(default_factory=list)
    revincludes: list[IncludeSpec] = field(default_factory=list)
    summary_count: bool = False
    total: str | None = None
    cursor: str | None = None
    #: Parameters ignored under lenient handling (reported in an OperationOutcome).
    ignored: list[str] = field(default_factory=list)
    #: The parameters as received, without ``_page`` (for links).
    echo: list[tuple[str, str]] = field(default_factory=list)


def split_values(text: str, separator: str = ",") -> list[str]:
    """Split on ``separator`` unless escaped with a backslash; unescape ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            if ch not in ",|$\\":
                current.append("\\")
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def split_token(value: str) -> tuple[str | None, str | None]:
    """``system|code`` -> (system, code); ``|code`` -> ("", code); ``code`` -> (None, code); ``s|`` -> (s, None)."""
    if "|" not in value.replace("\\|", ""):
        return None, value.replace("\\|", "|")
    parts = split_values(value, "|")
    system, code = parts[0], "|".join(parts[1:])
    return system, code or None


def parse_date(value: str) -> DateValue:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    span = date_range(text)
    if span is None:
        raise SearchError("a date parameter value is not a FHIR date", issue_code="value")
    return DateValue(prefix, *span)


class QueryParser:
    def __init__(self, default_count: int, max_count: int) -> None:
        self.default_count = default_count
        self.max_count = max_count

    def parse(
        self, resource_type: str, params: list[tuple[str, str]], *, lenient: bool
    ) -> SearchQuery:
        query = SearchQuery(resource_type, count=self.default_count)
        for name, value in params:
            if name != "_page":
                query.echo.append((name, value))
            try:
                self._one(query, name, value)
            except SearchError:
                if not lenient:
                    raise
                query.ignored.append(name.split(":")[0].split(".")[0])
        return query

    def _one(self, query: SearchQuery, name: str, value: str) -> None:
        base = name.split(":")[0]
        if base in CONTROL:
            self._control(query, name, value)
            return
        if name.startswith("_has") or base in (
            "_text",
            "_content",
            "_list",
            "_filter",
            "_query",
            "_tag",
            "_profile",
            "_security",
            "_source",
        ):
            raise SearchError(
                f"the search parameter {base!r} is not supported", issue_code="not-supported"
            )
        query.clauses.append(self.clause(query.resource_type, name, value))

    def clause(self, resource_type: str, name: str, value: str, *, chained: bool = False) -> Clause:
        head, dot, rest = name.partition(".")
        pname, _, modifier = head.partition(":")
        definition = parameters_of(resource_type).get(pname)
        if definition is None:
            raise SearchError(
                f"unknown search parameter {pname[:64]!r} for {resource_type}",
                issue_code="not-supported",
            )
        mod = modifier or None
        if dot:
            return self._chain(resource_type, definition, mod, rest, value, chained)
        target_type = None
        if mod is not None and mod not in MODIFIERS.get(definition.type, set()):
            if definition.type == REFERENCE and mod[:1].isupper():
                if definition.target and mod not in definition.target:
                    raise SearchError(f"{pname} cannot refer to {mod[:64]}", issue_code="value")
                target_type, mod = mod, None
            else:
                raise SearchError(
                    f"the modifier {modifier[:32]!r} is not supported on {pname}",
                    issue_code="not-supported",
                )
        if mod == "missing":
            if value not in ("true", "false"):
                raise SearchError(f":missing takes true or false ({pname})", issue_code="value")
            return Clause(definition, mod, (value,))
        values = tuple(v for v in split_values(value) if v != "")
        if not values:
            raise SearchError(f"the search parameter {pname} has no value", issue_code="value")
        if definition.type == DATE:
            for v in values:
                parse_date(v)
        return Clause(definition, mod, values, target_type=target_type)

    def _chain(
        self,
        resource_type: str,
        definition: SearchParamDef,
        mod: str | None,
        rest: str,
        value: str,
        chained: bool,
    ) -> Clause:
        if definition.type != REFERENCE or chained or "." in rest:
            raise SearchError(
                "only one level of chaining on a reference parameter is supported",
                issue_code="not-supported",
            )
        candidates = (mod,) if mod else definition.target
        if mod and definition.target and mod not in definition.target:
            raise SearchError(f"{definition.name} cannot refer to {mod[:64]}", issue_code="value")
        chained_name = rest.partition(":")[0]
        targets = tuple(t for t in candidates if chained_name in parameters_of(t))
        if not targets:
            raise SearchError(
                f"the chain {definition.name}.{chained_name[:64]} needs a known target type",
                issue_code="not-supported",
            )
        inner = tuple((t, self.clause(t, rest, value, chained=True)) for t in targets)
        return Clause(definition, None, (), chain=Chain(inner))

    def _control(self, query: SearchQuery, name: str, value: str) -> None:
        if name == "_count":
            if not (value.isascii() and value.isdigit()):
                raise SearchError("_count must be a non-negative integer", issue_code="value")
            query.count = min(int(value), self.max_count)
        elif name == "_sort":
            query.sort = []
            for key in value.split(","):
                desc = key.startswith("-")
                key = key.lstrip("-")
                definition = parameters_of(query.resource_type).get(key)
                if key not in SORT_KEYS and (definition is None or definition.type != DATE):
                    raise SearchError(f"cannot sort by {key[:64]!r}", issue_code="not-supported")
                query.sort.append((key, desc))
        elif name in ("_include", "_revinclude", "_include:iterate", "_revinclude:iterate"):
            spec = self._include(query, value, reverse=name.startswith("_revinclude"))
            (query.revincludes if name.startswith("_revinclude") else query.includes).extend(spec)
        elif name == "_summary":
            if value == "count":
                query.summary_count = True
            elif value != "false":
                raise SearchError("_summary supports count and false", issue_code="not-supported")
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise SearchError("_total is none, estimate or accurate", issue_code="value")
            query.total = value
        elif name == "_page":
            query.cursor = value
        elif name not in ("_format", "_pretty", "_elements"):
            raise SearchError(
                f"the parameter {name[:64]!r} is not supported", issue_code="not-supported"
            )

    def _include(self, query: SearchQuery, value: str, *, reverse: bool) -> list[IncludeSpec]:
        source, _, rest = value.partition(":")
        pname, _, target = rest.partition(":")
        if not reverse and source != query.resource_type:
            raise SearchError("_include must name the searched type", issue_code="value")
        params = parameters_of(source)
        if pname == "*":
            found = [d for d in params.values() if d.type == REFERENCE]
        else:
            definition = params.get(pname)
            if definition is None or definition.type != REFERENCE:
                raise SearchError(
                    f"cannot include through {value[:64]!r}", issue_code="not-supported"
                )
            found = [definition]
        if reverse:
            found = [d for d in found if not d.target or query.resource_type in d.target]
        return [IncludeSpec(source, d, target or None) for d in found]
