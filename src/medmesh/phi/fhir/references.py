"""One canonical form for every reference phi stores or searches.

A reference to a resource of this server is stored, indexed, checked and put into a
compartment as ``Type/id`` (or ``Type/id/_history/v``, a version-specific reference, kept
as such). An absolute URL under one of the server's own bases (:class:`LocalBases`: the
configured ``base_url`` and the base the request came in on; scheme and host compared
case-insensitively, default ports implied, loopback names equal) is brought to that form
first, so an access rule that holds for one spelling holds for all.

Kept as given: ``#contained`` references, ``urn:uuid:``/``urn:oid:`` placeholders (a
Bundle resolves them before its resources are checked), absolute references to other
servers (external: never in a local compartment, never indexed as a local ``Type/id``)
and identifier-only references (no ``reference`` string at all). Anything else that
looks local but is not exactly ``Type/id`` (``Patient/B/``, ``patient/B``, ``" Patient/B"``,
``Patient//B``, ``Patient/B?x``, an unknown type, an id outside FHIR's id syntax, a URL
on this server outside its FHIR base) is refused with a 400 naming the element; the
message never repeats the value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.types import R4_RESOURCE_TYPES, is_valid_id

PLACEHOLDER_PREFIXES = ("urn:uuid:", "urn:oid:")
_CANONICAL = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]{0,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class InvalidReference(InvalidResource):
    """A reference that is neither canonical, nor external, nor otherwise allowed (400)."""


@functools.cache
def is_resource_type(name: str) -> bool:
    """Whether ``name`` is an R4 resource type (spelt exactly: ``patient`` is not)."""
    return name in R4_RESOURCE_TYPES


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """A reference to a resource of this server, in canonical form."""

    resource_type: str
    id: str
    version: str | None = None

    @property
    def reference(self) -> str:
        base = f"{self.resource_type}/{self.id}"
        return base if self.version is None else f"{base}/_history/{self.version}"


def parse_canonical(reference: str) -> LocalTarget | None:
    """The target of a reference already in canonical form (relative), else None."""
    match = _CANONICAL.match(reference)
    if match is None or not is_resource_type(match["type"]):
        return None
    return LocalTarget(match["type"], match["id"], match["version"])


def is_non_local(reference: str) -> bool:
    """``#contained``, a placeholder or an absolute URI: kept as given, in no compartment."""
    return reference.startswith("#") or _SCHEME.match(reference) is not None


def _host_key(host: str) -> str:
    host = host.lower().rstrip(".")
    return "loopback" if host in _LOOPBACK else host


@dataclass(frozen=True, slots=True)
class _Base:
    host: str
    port: int | None
    default_port: bool
    path: str


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return parts


class LocalBases:
    """The absolute bases under which this server's FHIR API is reached."""

    __slots__ = ("_bases", "urls")

    def __init__(self, *urls: str) -> None:
        self.urls = tuple(u for u in urls if u)
        bases = []
        for url in self.urls:
            parts = _split(url.strip())
            if parts is None or parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
                continue
            default = _DEFAULT_PORTS[parts.scheme.lower()]
            port = parts.port if parts.port is not None else default
            bases.append(
                _Base(_host_key(parts.hostname), port, port == default, parts.path.rstrip("/"))
            )
        self._bases = tuple(bases)

    def __repr__(self) -> str:
        return f"LocalBases{self.urls!r}"

    def _same_origin(self, parts: SplitResult) -> list[_Base]:
        scheme = parts.scheme.lower()
        host = _host_key(parts.hostname or "")
        default = _DEFAULT_PORTS[scheme]
        port = parts.port if parts.port is not None else default
        return [
            b
            for b in self._bases
            if b.host == host and (b.port == port or (b.default_port and port == default))
        ]

    def local_path(self, url: str) -> str | None:
        """For an http(s) URL on this server: the part after its FHIR base (``""`` when the URL
        is on this server but outside every base, or not plain); None for other servers."""
        parts = _split(url)
        if parts is None or parts.scheme.lower() not in _DEFAULT_PORTS:
            return None
        origin = self._same_origin(parts)
        if not origin:
            return None
        if parts.query or parts.fragment or parts.username or parts.password or "?" in url:
            return ""
        for base in origin:
            if parts.path.startswith(base.path + "/"):
                return parts.path[len(base.path) + 1 :]
        return ""


def canonical_reference(reference: str, bases: Callable[[], LocalBases]) -> str:
    """``reference`` in its stored form, or :class:`InvalidReference` with the reason (the
    caller names the element). ``bases`` is called only for an absolute http(s) URL."""
    match = _CANONICAL.match(reference)
    if match is not None and is_resource_type(match["type"]):
        return reference
    if not reference or reference != reference.strip() or any(ch.isspace() for ch in reference):
        raise InvalidReference("holds whitespace or is empty")
    if reference.startswith("#") or reference.startswith(PLACEHOLDER_PREFIXES):
        return reference
    if _SCHEME.match(reference):
        if reference.split(":", 1)[0].lower() not in _DEFAULT_PORTS:
            return reference  # urn:, mailto: ...: not a resource of this server
        rest = bases().local_path(reference)
        if rest is None:
            return reference  # another server: external
        target = parse_canonical(rest)
        if target is None:
            raise InvalidReference(
                "is a URL on this server but not <FHIR base>/Type/id[/_history/v]"
            )
        return target.reference
    if "?" in reference or "#" in reference:
        if is_resource_type(reference.partition("?")[0]):
            raise InvalidReference(
                "is a conditional reference, which only a transaction or batch Bundle resolves"
            )
        raise InvalidReference("has a query or fragment part (Type/id takes none)")
    kind, _, rest = reference.partition("/")
    if not is_resource_type(kind):
        raise InvalidReference("does not start with a FHIR resource type (Type/id)")
    ident = rest.partition("/")[0]
    if not is_valid_id(ident):
        raise InvalidReference("does not end in a FHIR id (Type/id)")
    raise InvalidReference("is not of the form Type/id or Type/id/_history/v")


def lenient_target(reference: str, bases: LocalBases | None = None) -> LocalTarget | None:
    """What a stored, pre-canonical spelling evidently points at (``" patient/B/"`` ->
    ``Patient/B``; an absolute URL only under ``bases``), or None. For data written before
    references were canonical: it puts such a resource into the compartment it names."""
    text = reference.strip()
    if _SCHEME.match(text):
        rest = bases.local_path(text.split("?")[0].split("#")[0]) if bases is not None else None
        if not rest:
            return None
        text = rest
    text = text.split("?")[0].split("#")[0]
    parts = [p for p in text.split("/") if p.strip()]
    if len(parts) not in (2, 4) or (len(parts) == 4 and parts[2] != "_history"):
        return None
    kind = _resource_types_by_lower_name().get(parts[0].strip().lower())
    ident = parts[1].strip()
    if kind is None or not is_valid_id(ident):
        return None
    return LocalTarget(kind, ident)


@functools.cache
def _resource_types_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in R4_RESOURCE_TYPES}


def reference_holders(resource: dict[str, Any], root: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every dict under ``resource`` with a ``reference`` key, and its element path
    (``Observation.contained[0].subject``); iterative, since depth is unbounded here."""
    stack: list[tuple[Any, str]] = [(resource, root)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if "reference" in node:
                yield node, path
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((value, f"{path}.{key}"))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append((value, f"{path}[{i}]"))


def _holders(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dict under ``resource`` with a ``reference`` key (no paths: the common case)."""
    found: list[dict[str, Any]] = []
    stack: list[Any] = [resource]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if type(node) is dict:
            if "reference" in node:
                found.append(node)
            for value in node.values():
                kind = type(value)
                if kind is dict or kind is list:
                    push(value)
        else:
            for value in node:
                kind = type(value)
                if kind is dict or kind is list:
                    push(value)
    return found


def canonicalize_references(
    resource: dict[str, Any], resource_type: str, bases: Callable[[], LocalBases]
) -> None:
    """Bring every reference of ``resource`` to its stored form, in place; the first one that
    cannot be is refused (400, ``expression`` the element's path)."""
    for holder in _holders(resource):
        value = holder["reference"]
        if type(value) is not str:
            continue  # not a Reference (the resource was validated against its model)
        try:
            holder["reference"] = canonical_reference(value, bases)
        except InvalidReference as exc:
            path = next(p for h, p in reference_holders(resource, resource_type) if h is holder)
            where = f"{path}.reference"
            raise InvalidReference(
                f"{where} {exc.message}", issue_code="value", expression=[where]
            ) from None


def canonicalize_holders(
    resource: dict[str, Any],
    resource_type: str,
    holders: list[dict[str, Any]],
    bases: Callable[[], LocalBases],
) -> None:
    """:func:`canonicalize_references` of ``resource`` whose objects holding a ``reference``
    key are ``holders`` (found by the caller's own walk, in any order). When one cannot be
    brought to its form, the refusal is the one :func:`canonicalize_references` gives (the
    first in its order; the references already rewritten are rewritten to themselves)."""
    for holder in holders:
        value = holder["reference"]
        if type(value) is not str:
            continue
        try:
            holder["reference"] = canonical_reference(value, bases)
        except InvalidReference:
            canonicalize_references(resource, resource_type, bases)
            raise


def canonical_search_value(value: str, bases: Callable[[], LocalBases]) -> str:
    """A reference search value with a local absolute URL made ``Type/id`` (others unchanged:
    a bare id, ``Type/id``, an external URL are matched as given)."""
    if _SCHEME.match(value) and value.split(":", 1)[0].lower() in _DEFAULT_PORTS:
        rest = bases().local_path(value)
        target = parse_canonical(rest) if rest else None
        if target is not None:
            return target.reference
    return value
