"""The search parameters of ``/fhir/AuditEvent``, parsed and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from medmesh.phi.audit_events.rendering import actions_for_letters, actions_for_subtypes
from medmesh.phi.fhir.errors import InvalidResource

DEFAULT_COUNT = 50
MAX_COUNT = 1000
KNOWN = frozenset({"patient", "agent", "date", "action", "subtype", "_count", "_cursor", "_format"})
_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_PREFIXES = ("eq", "ge", "le", "gt", "lt")
_LETTERS = frozenset("CRUDE")


class BadSearch(InvalidResource):
    """400: a search parameter this endpoint cannot honour."""

    def __repr__(self) -> str:
        return f"BadSearch({self.message!r})"


@dataclass
class AuditQuery:
    """What ``/fhir/AuditEvent`` was asked for."""

    patient: str | None = None
    agent: str | None = None
    #: None: any action; otherwise the set of our action names allowed (maybe empty: no match).
    actions: set[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    count: int = DEFAULT_COUNT
    after_seq: int | None = None
    echo: list[tuple[str, str]] = field(default_factory=list)


def date_range(value: str) -> tuple[datetime, datetime]:
    """The instants ``[start, end)`` a FHIR date or dateTime of any precision covers."""
    match = _DATE.fullmatch(value)
    if match is None:
        raise BadSearch(
            "date must be a FHIR date or dateTime such as 2024-05-01 or 2024-05-01T10:00:00Z",
            issue_code="value",
        )
    parts = match.groupdict()
    try:
        year, month, day = int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1)
        if parts["hour"] is None:
            start = datetime(year, month, day, tzinfo=UTC)
            if parts["month"] is None:
                return start, start.replace(year=year + 1)
            if parts["day"] is None:
                return start, (
                    start.replace(year=year + 1, month=1)
                    if month == 12
                    else start.replace(month=month + 1)
                )
            return start, start + timedelta(days=1)
        zone = parts["zone"]
        tz = UTC if zone in (None, "Z") else datetime.strptime(zone.replace(":", ""), "%z").tzinfo
        fraction = parts["fraction"]
        micro = int((fraction + "000000")[:6]) if fraction else 0
        start = datetime(
            year,
            month,
            day,
            int(parts["hour"]),
            int(parts["minute"]),
            int(parts["second"] or 0),
            micro,
            tzinfo=tz,
        ).astimezone(UTC)
    except ValueError:
        raise BadSearch("date is not a valid calendar date", issue_code="value") from None
    if parts["second"] is None:
        step = timedelta(minutes=1)
    elif fraction:
        step = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    else:
        step = timedelta(seconds=1)
    return start, start + step


def _tighten(query: AuditQuery, since: datetime | None, until: datetime | None) -> None:
    if since is not None and (query.since is None or since > query.since):
        query.since = since
    if until is not None and (query.until is None or until < query.until):
        query.until = until


def _values(raw: str) -> set[str]:
    return {part.strip() for part in raw.split(",") if part.strip()}


def _restrict(query: AuditQuery, actions: set[str]) -> None:
    query.actions = actions if query.actions is None else query.actions & actions


def parse_query(params: list[tuple[str, str]], *, lenient: bool) -> AuditQuery:
    """Parse the query string; 400 for unknown parameters unless ``lenient``."""
    query = AuditQuery()
    for name, value in params:
        base = name.split(":")[0]
        if base not in KNOWN or (":" in name and base != "subtype"):
            if lenient:
                continue
            raise BadSearch(
                f"unknown search parameter {name[:64]!r} for AuditEvent", issue_code="not-supported"
            )
        if base == "_format":
            continue
        query.echo.append((name, value))
        if base == "patient":
            query.patient = value.removeprefix("Patient/").strip() or None
        elif base == "agent":
            query.agent = value.strip() or None
        elif base == "date":
            if value[:2] in ("ne", "sa", "eb", "ap"):
                raise BadSearch(
                    "date supports the prefixes eq, ge, gt, le and lt", issue_code="not-supported"
                )
            prefix = value[:2] if value[:2] in _PREFIXES else "eq"
            start, end = date_range(value[2:] if value[:2] in _PREFIXES else value)
            bounds = {
                "eq": (start, end),
                "ge": (start, None),
                "gt": (end, None),
                "le": (None, end),
                "lt": (None, start),
            }[prefix]
            _tighten(query, *bounds)
        elif base == "action":
            letters = {letter.upper() for letter in _values(value)}
            if not letters <= _LETTERS:
                raise BadSearch("action must be C, R, U, D or E", issue_code="value")
            _restrict(query, actions_for_letters(letters))
        elif base == "subtype":
            codes = {code.rpartition("|")[2] for code in _values(value)}
            _restrict(query, actions_for_subtypes(codes))
        elif base == "_count":
            if not (value.isascii() and value.isdigit()):
                raise BadSearch("_count must be a whole number", issue_code="value")
            query.count = max(1, min(int(value), MAX_COUNT))
        elif base == "_cursor":
            if not (value.isascii() and value.isdigit()):
                raise BadSearch("_cursor is not valid", issue_code="value")
            query.after_seq = int(value)
    return query
