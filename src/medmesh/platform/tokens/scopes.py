"""OAuth scopes: SMART App Launch v2 resource scopes and plain scopes.

A SMART scope is ``<context>/<Type|*>.<permissions>[?query]`` where context is
``patient``, ``user`` or ``system`` and permissions are the v2 letters
``c r u d s`` in that order (``rs``, ``cruds``), or a v1 suffix: ``read`` (=
``rs``), ``write`` (= ``cud``), ``*`` (= ``cruds``). The query (``?category=
http://terminology.hl7.org/CodeSystem/observation-category|vital-signs``)
limits the scope to matching resources; callers apply it with
:meth:`ScopeSet.smart_scopes_for`. Every other scope (``openid``, ``fhirUser``,
``launch/patient``, ``auth:admin``, ``payments:read`` ...) is kept as a plain
string. A string that starts like a SMART scope but is not one is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import parse_qsl, urlencode

from medmesh.platform.errors import MedmeshError

CONTEXTS: Final = ("patient", "user", "system")
PERMISSIONS: Final = "cruds"
_V1: Final = {"read": "rs", "write": "cud", "*": "cruds"}
_SMART = re.compile(
    r"(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})"
    r"\.(?P<perms>[a-z]+|\*)(?:\?(?P<query>.+))?",
    re.DOTALL,
)
_LOOKS_SMART = re.compile(r"(?:patient|user|system)/")
_PLAIN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 scope-token characters


class InvalidScope(MedmeshError):
    """A scope string that is not well formed, or a request for scopes not allowed."""

    status, code = 400, "invalid_scope"


def _describe(scope: str) -> str:
    return scope if len(scope) <= 80 else scope[:77] + "..."


def _permissions(perms: str, scope: str) -> frozenset[str]:
    if perms in _V1:
        perms = _V1[perms]
    # v2 requires each letter at most once, in c-r-u-d-s order.
    position = -1
    for letter in perms:
        index = PERMISSIONS.find(letter)
        if index <= position:
            raise InvalidScope(f"invalid SMART permissions in scope {_describe(scope)!r}")
        position = index
    return frozenset(perms)


@dataclass(frozen=True, slots=True)
class SmartScope:
    """One SMART resource scope, e.g. ``patient/Observation.rs?category=vital-signs``."""

    context: str
    resource_type: str
    permissions: frozenset[str]
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, scope: str) -> SmartScope:
        """Parse a SMART v1 or v2 resource scope; raises :class:`InvalidScope`."""
        match = _SMART.fullmatch(scope)
        if match is None:
            raise InvalidScope(f"invalid SMART scope {_describe(scope)!r}")
        query = match["query"]
        params: tuple[tuple[str, str], ...] = ()
        if query is not None:
            try:
                params = tuple(parse_qsl(query, keep_blank_values=True, strict_parsing=True))
            except ValueError as exc:
                raise InvalidScope(f"invalid query in scope {_describe(scope)!r}") from exc
        return cls(match["context"], match["type"], _permissions(match["perms"], scope), params)

    def param(self, name: str) -> list[str]:
        """The values of query parameter ``name`` (e.g. ``category``); empty when unlimited."""
        return [value for key, value in self.params if key == name]

    def allows(self, resource_type: str, permission: str) -> bool:
        """True when this scope grants ``permission`` on ``resource_type`` (query ignored)."""
        return permission in self.permissions and self.resource_type in ("*", resource_type)

    def covers(self, other: SmartScope) -> bool:
        """True when everything ``other`` grants is granted by this scope too.

        Same context, a matching type, a superset of permissions, and every
        limit of this scope is also a limit of ``other`` with no wider values.
        """
        if self.context != other.context or not self.permissions >= other.permissions:
            return False
        if self.resource_type not in ("*", other.resource_type):
            return False
        for name in {key for key, _ in self.params}:
            mine, theirs = set(self.param(name)), set(other.param(name))
            if not theirs or not theirs <= mine:
                return False
        return True

    def __str__(self) -> str:
        perms = "".join(p for p in PERMISSIONS if p in self.permissions)
        query = "?" + urlencode(self.params, safe=":/|") if self.params else ""
        return f"{self.context}/{self.resource_type}.{perms}{query}"


def is_smart_scope(scope: str) -> bool:
    """True when ``scope`` is written as a SMART resource scope (valid or not)."""
    return _LOOKS_SMART.match(scope) is not None


def _check_permission(permission: str) -> None:
    if len(permission) != 1 or permission not in PERMISSIONS:
        raise ValueError(f"permission must be one of c, r, u, d, s, not {permission!r}")


class ScopeSet:
    """The scopes of a token or client, parsed once. Immutable."""

    __slots__ = ("_raw", "plain", "smart", "tokens")

    def __init__(self, scopes: str | Iterable[str] = ()) -> None:
        """Parse ``scopes``: a space-separated string or an iterable of scope strings."""
        if isinstance(scopes, str):
            scopes = scopes.split()
        tokens: list[str] = []
        plain: set[str] = set()
        smart: list[SmartScope] = []
        for scope in scopes:
            if not scope or scope in tokens:
                continue
            if is_smart_scope(scope):
                smart.append(SmartScope.parse(scope))
            elif _PLAIN.fullmatch(scope):
                plain.add(scope)
            else:
                raise InvalidScope(f"invalid scope {_describe(scope)!r}")
            tokens.append(scope)
        self._raw = " ".join(tokens)
        self.tokens: frozenset[str] = frozenset(tokens)
        self.plain: frozenset[str] = frozenset(plain)
        self.smart: tuple[SmartScope, ...] = tuple(smart)

    @classmethod
    def parse(cls, scope: str) -> ScopeSet:
        """The scopes of a space-separated ``scope`` string (cached: tokens repeat)."""
        return _parse_cached(scope)

    def has(self, scope: str) -> bool:
        """True for a plain scope held verbatim, or a SMART scope some held scope covers."""
        if scope in self.tokens:
            return True
        if is_smart_scope(scope):
            wanted = SmartScope.parse(scope)
            return any(held.covers(wanted) for held in self.smart)
        return False

    def allows(self, resource_type: str, permission: str, *, context: str | None = None) -> bool:
        """True when some SMART scope (of ``context``, if given) grants the permission.

        Query limits such as ``?category=`` are not applied here; use
        :meth:`smart_scopes_for` to read them.
        """
        _check_permission(permission)
        return any(
            scope.allows(resource_type, permission)
            and (context is None or scope.context == context)
            for scope in self.smart
        )

    def smart_scopes_for(self, resource_type: str, permission: str) -> list[SmartScope]:
        """Every SMART scope that grants ``permission`` on ``resource_type``, with its limits."""
        _check_permission(permission)
        return [scope for scope in self.smart if scope.allows(resource_type, permission)]

    def contexts(self) -> frozenset[str]:
        """The SMART contexts (``patient``, ``user``, ``system``) present."""
        return frozenset(scope.context for scope in self.smart)

    def __contains__(self, scope: object) -> bool:
        return isinstance(scope, str) and self.has(scope)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw.split()) if self._raw else iter(())

    def __len__(self) -> int:
        return len(self.tokens)

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScopeSet) and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash(self.tokens)

    def __str__(self) -> str:
        return self._raw

    def __repr__(self) -> str:
        return f"ScopeSet({self._raw!r})"


@lru_cache(maxsize=1024)
def _parse_cached(scope: str) -> ScopeSet:
    return ScopeSet(scope)


def narrow(requested: str, allowed: ScopeSet) -> str:
    """The scopes to grant for a token request, as a space-separated string.

    Each requested scope must be covered by an allowed one (a requested
    ``patient/Observation.rs`` is covered by ``patient/*.cruds`` or by
    ``patient/Observation.read``); otherwise :class:`InvalidScope` is raised.
    An empty request gets every allowed scope (RFC 6749 section 3.3 default).
    """
    wanted = _parse_cached(requested)  # clients ask for the same scopes again and again
    if not wanted:
        return str(allowed)
    for scope in wanted:
        if not allowed.has(scope):
            raise InvalidScope(f"scope {_describe(scope)!r} is not allowed for this client")
    return str(wanted)
