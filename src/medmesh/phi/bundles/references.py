"""References inside a Bundle: placeholders (``urn:uuid:``/``urn:oid:`` fullUrls) and conditional
references (``Organization?identifier=sys|val``) rewritten to the ``Type/id`` they stand for.

One walk per resource finds every ``reference`` string (also inside extensions and
contained resources); the Bundle's conditional references are resolved once each,
then every holder is rewritten in place. References to ``#contained`` resources,
to resources outside the Bundle and identifier-only references stay as they are here;
every entry's resource then goes through the same checks as a single write, which brings
its references to their canonical form (:mod:`medmesh.phi.fhir.references`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medmesh.phi.bundles.requests import relative_url
from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.references import LocalBases
from medmesh.phi.fhir.types import SUPPORTED_TYPES

PLACEHOLDER_PREFIXES = ("urn:uuid:", "urn:oid:")

#: A dict that holds ``"reference": "<string>"`` (a Reference, wherever it occurs).
Holder = dict[str, Any]


def reference_holders(resource: Any) -> list[Holder]:
    """Every dict under ``resource`` (any JSON value) with a string ``reference`` (iterative:
    depth is unbounded here)."""
    found: list[Holder] = []
    stack: list[Any] = [resource] if type(resource) in (dict, list) else []
    pop, push = stack.pop, stack.append
    # Parsed JSON holds plain dicts and lists: exact type tests cost less than isinstance.
    while stack:
        node = pop()
        if type(node) is dict:
            if type(node.get("reference")) is str:
                found.append(node)
            children = node.values()
        else:
            children = node
        for value in children:
            kind = type(value)
            if kind is dict or kind is list:
                push(value)
    return found


def is_placeholder(reference: str) -> bool:
    return reference.startswith(PLACEHOLDER_PREFIXES)


def conditional_target(reference: str, bases: Callable[[], LocalBases]) -> tuple[str, str] | None:
    """``(type, query)`` of a conditional reference such as ``Practitioner?identifier=...``
    (relative, or absolute under one of this server's bases; another server's is external)."""
    if "?" not in reference or reference.startswith(("#", *PLACEHOLDER_PREFIXES)):
        return None
    path, _, query = reference.partition("?")
    if "://" in path:
        local = bases().local_path(path)
        if not local:
            return None
        path = local
    if path in SUPPORTED_TYPES and query:
        return path, query
    return None


def placeholder_keys(full_url: str, resource_type: str, base_url: str) -> list[str]:
    """The strings that refer to an entry: its fullUrl and, for ``.../Type/id`` URLs, ``Type/id``."""
    keys = [full_url]
    if not is_placeholder(full_url):
        relative = relative_url(full_url, base_url)
        name, _, rest = relative.partition("/")
        if relative != full_url and name == resource_type and rest and "/" not in rest:
            keys.append(relative)
    return keys


def rewrite(
    holders: list[Holder], targets: dict[str, str], conditionals: dict[str, str], where: str
) -> None:
    """Point every holder at its target; an unknown ``urn:uuid:`` placeholder is an error (400)."""
    for holder in holders:
        reference: str = holder["reference"]
        target = targets.get(reference) or conditionals.get(reference)
        if target is not None:
            holder["reference"] = target
        elif is_placeholder(reference):
            raise InvalidResource(
                f"{where}: a reference points at a placeholder that no entry of the Bundle "
                "has as fullUrl",
                issue_code="not-found",
                expression=[where],
            )
