"""FHIR R4 transaction Bundles: one per patient (POST, ``urn:uuid:`` fullUrls) and one for the
shared directory (PUT with the directory ids, so loading it twice changes nothing).

A patient's resources refer to each other as ``urn:uuid:<id>`` inside its Bundle, so a server
gives them its own ids and rewrites the references; references to the directory stay plain
``Type/id`` (the directory Bundle PUTs those ids first). No reference is ever a search URL
(``Organization?identifier=...``): loading never depends on a server's search.

The byte form (:func:`patient_bundle_bytes`) is built from each resource's serialized form so
the NDJSON and Bundle outputs of one run serialize every resource once; it is byte-for-byte
``orjson.dumps(transaction_bundle(patient))``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import orjson

from medmesh.synthetic.engine import SyntheticPatient

URN_PREFIX = "urn:uuid:"
_PLAIN_REFERENCE = re.compile(rb'"reference":"([A-Za-z]+/[A-Za-z0-9\-.]{1,64})"')
_BUNDLE_HEAD = b'{"resourceType":"Bundle","type":"transaction","entry":['


def own_reference_map(resources: Iterable[dict[str, Any]]) -> dict[str, str]:
    """``Type/id`` -> ``urn:uuid:id`` for a patient's own resources."""
    return {f"{r['resourceType']}/{r['id']}": URN_PREFIX + r["id"] for r in resources}


def _to_urn(node: Any, urns: dict[str, str]) -> Any:
    """A copy of ``node`` whose own-resource references are ``urn:uuid:`` (others untouched)."""
    if isinstance(node, dict):
        copied: dict[str, Any] = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                copied[key] = urns.get(value, value)
            elif isinstance(value, dict | list):
                copied[key] = _to_urn(value, urns)
            else:
                copied[key] = value
        return copied
    if isinstance(node, list):
        return [_to_urn(item, urns) if isinstance(item, dict | list) else item for item in node]
    return node


def transaction_bundle(patient: SyntheticPatient) -> dict[str, Any]:
    """The patient's transaction Bundle: one POST entry per resource, ``urn:uuid:`` fullUrls.

    Works whether the patient was generated with plain or ``urn`` references: plain references
    to the patient's own resources are turned into ``urn:uuid:`` ones (on a copy).
    """
    urns = own_reference_map(patient.resources)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": URN_PREFIX + resource["id"],
                "resource": _to_urn(resource, urns),
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
            for resource in patient.resources
        ],
    }


def directory_bundle(resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The shared directory (Organization, Location, Practitioner, ...) as PUT entries with ids."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
            for resource in resources
        ],
    }


def _own_type_patterns(types: frozenset[str]) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """(the ``"reference":"Type/`` prefix, the referenced ids) for references to ``types``."""
    patterns = _OWN_TYPE_PATTERNS.get(types)
    if patterns is None:
        names = b"|".join(re.escape(t.encode()) for t in sorted(types))
        prefix = rb'"reference":"(?:' + names + rb")/"
        patterns = (re.compile(prefix), re.compile(prefix + rb'([A-Za-z0-9\-.]{1,64})"'))
        _OWN_TYPE_PATTERNS[types] = patterns
    return patterns


_OWN_TYPE_PATTERNS: dict[frozenset[str], tuple[re.Pattern[bytes], re.Pattern[bytes]]] = {}


def patient_bundle_bytes(
    resources: Sequence[dict[str, Any]],
    serialized: Sequence[bytes] | None = None,
    *,
    references: Literal["plain", "urn"] = "plain",
) -> bytes:
    """``orjson.dumps(transaction_bundle(...))`` built from the resources' serialized forms.

    ``serialized[i]`` is ``orjson.dumps(resources[i])`` (a trailing newline is allowed); it is
    computed here when not given. ``references`` says how the resources refer to each other:
    ``"urn"`` (generated for a Bundle: nothing to rewrite, the fastest) or ``"plain"`` (the
    NDJSON form: own references are rewritten in the bytes).
    """
    if serialized is None:
        serialized = [orjson.dumps(resource) for resource in resources]
    entries = []
    for resource, body in zip(resources, serialized, strict=True):
        entries.append(
            b'{"fullUrl":"urn:uuid:'
            + resource["id"].encode()
            + b'","resource":'
            + body.rstrip(b"\n")
            + b',"request":{"method":"POST","url":"'
            + resource["resourceType"].encode()
            + b'"}}'
        )
    bundle = _BUNDLE_HEAD + b",".join(entries) + b"]}"
    if references == "urn":
        return bundle
    # Fast path: every reference to a type the patient has resources of points at one of them
    # (checked in one C-level scan), so the prefix alone is replaced, without a Python callback.
    prefix, with_id = _own_type_patterns(frozenset(r["resourceType"] for r in resources))
    own_ids = {r["id"].encode() for r in resources}
    if own_ids.issuperset(with_id.findall(bundle)):
        return prefix.sub(b'"reference":"urn:uuid:', bundle)
    own = {f"{r['resourceType']}/{r['id']}".encode() for r in resources}

    def to_urn(match: re.Match[bytes]) -> bytes:
        target = match.group(1)
        if target in own:
            return b'"reference":"urn:uuid:' + target.partition(b"/")[2] + b'"'
        return match.group(0)

    return _PLAIN_REFERENCE.sub(to_urn, bundle)
