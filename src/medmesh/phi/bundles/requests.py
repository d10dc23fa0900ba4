"""The shape of a transaction/batch Bundle and of each entry's ``request``.

A Bundle is checked before anything is stored: ``resourceType`` Bundle, ``type``
transaction or batch, at most ``max_entries`` entries, each with a
``request.method`` and ``request.url`` the store understands. Messages name the
entry (``Bundle.entry[3]``), never the submitted values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from medmesh.phi.fhir.errors import FhirError, InvalidResource
from medmesh.phi.fhir.types import SUPPORTED_TYPES, is_valid_id
from medmesh.platform.errors import MedmeshError

KINDS = ("transaction", "batch")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: FHIR transaction processing order (spec 3.1.0.11.2): deletes, creates, updates, reads.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass(slots=True)
class BundleEntry:
    """One entry of the request Bundle, parsed; ``resource_id`` is filled once known."""

    index: int
    method: str
    resource_type: str
    resource_id: str | None
    #: The search part of a conditional URL (``Patient?identifier=...``) or of a GET search.
    query: str | None
    #: ``_history/<v>`` of a GET vread.
    version: str | None
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    #: A POST whose ``ifNoneExist`` found the resource: nothing is created, the entry points at it.
    existing: bool = False
    #: The entry's answer (``response`` element plus optional ``resource``), in request order.
    answer: dict[str, Any] = field(default_factory=dict)
    #: A batch entry that could not be parsed or failed keeps its error here.
    error: MedmeshError | None = None

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query or "", keep_blank_values=True)


def _invalid(where: str, message: str, issue_code: str = "invalid") -> InvalidResource:
    return InvalidResource(f"{where}: {message}", issue_code=issue_code, expression=[where])


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def relative_url(url: str, base_url: str) -> str:
    """``url`` relative to the FHIR base (``http://host/fhir/Patient/1`` -> ``Patient/1``).

    Only the path is looked at: a search part may hold URLs of its own (``identifier=http://...|v``).
    """
    path, mark, query = url.partition("?")
    for base in (base_url.rstrip("/") + "/", "/fhir/", "fhir/", "/"):
        if path.startswith(base):
            return path[len(base) :] + mark + query
    marker = path.find("/fhir/")
    if "://" in path and marker >= 0:
        return path[marker + len("/fhir/") :] + mark + query
    return url


def parse_entry(index: int, raw: Any, base_url: str) -> BundleEntry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise _invalid(where, "an entry must be an object", "structure")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise _invalid(where, "request is required", "required")
    method, url = _text(request.get("method")), _text(request.get("url"))
    if method is None or url is None:
        raise _invalid(where, "request.method and request.url are required", "required")
    method = method.upper()
    if method not in METHODS:
        raise _invalid(
            where, "request.method must be GET, HEAD, POST, PUT, PATCH or DELETE", "value"
        )
    path, _, query = relative_url(url, base_url).partition("?")
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise _invalid(where, "request.url names no resource type", "value")
    resource_type = segments[0]
    if resource_type not in SUPPORTED_TYPES:
        raise FhirError(
            f"{where}: request.url names an unsupported resource type or operation",
            status=404,
            issue_code="not-supported",
            expression=[where],
        )
    rest = segments[1:]
    resource_id = version = None
    if rest:
        resource_id = rest[0]
        if resource_id.startswith("$") or not is_valid_id(resource_id):
            raise FhirError(
                f"{where}: operations and malformed ids are not supported in bundles",
                status=404,
                issue_code="not-supported",
                expression=[where],
            )
        if len(rest) == 3 and rest[1] == "_history" and method in ("GET", "HEAD"):
            version = rest[2]
        elif len(rest) > 1:
            raise FhirError(
                f"{where}: this request.url is not supported in bundles",
                status=404,
                issue_code="not-supported",
                expression=[where],
            )
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise _invalid(where, f"a {method} entry needs a resource", "required")
        if resource.get("resourceType") != resource_type:
            raise _invalid(where, "resource.resourceType does not match request.url")
    elif resource is not None and not isinstance(resource, dict):
        raise _invalid(where, "resource must be an object", "structure")
    if method == "POST" and resource_id is not None:
        raise _invalid(where, "POST goes to the type (request.url 'Type'), not to an id", "value")
    if method in ("PUT", "PATCH", "DELETE") and resource_id is None and not query:
        raise _invalid(where, f"{method} needs 'Type/id' or a conditional 'Type?search'", "value")
    return BundleEntry(
        index=index,
        method=method,
        resource_type=resource_type,
        resource_id=resource_id,
        query=query or None,
        version=version,
        full_url=_text(raw.get("fullUrl")),
        resource=resource if isinstance(resource, dict) else None,
        if_none_exist=_text(request.get("ifNoneExist")),
        if_match=_text(request.get("ifMatch")),
        if_none_match=_text(request.get("ifNoneMatch")),
    )


def parse_bundle(bundle: Any, max_entries: int, base_url: str) -> tuple[str, list[BundleEntry]]:
    """The Bundle's type and its parsed entries; 400 OperationOutcome when the shape is wrong."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource(
            "POST /fhir takes a Bundle", issue_code="invalid", expression=["Bundle"]
        )
    kind = bundle.get("type")
    if kind not in KINDS:
        raise InvalidResource(
            "Bundle.type must be transaction or batch",
            issue_code="value",
            expression=["Bundle.type"],
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidResource(
            "Bundle.entry must be a list", issue_code="structure", expression=["Bundle.entry"]
        )
    if len(entries) > max_entries:
        raise FhirError(
            f"a Bundle may hold at most {max_entries} entries",
            status=400,
            issue_code="too-costly",
            expression=["Bundle.entry"],
        )
    if kind == "transaction":
        parsed = [parse_entry(i, raw, base_url) for i, raw in enumerate(entries)]
        _check_unique_targets(parsed)
        return kind, parsed
    return kind, [_parse_or_failed(i, raw, base_url) for i, raw in enumerate(entries)]


def _parse_or_failed(index: int, raw: Any, base_url: str) -> BundleEntry:
    # A batch entry that does not parse answers with its error; the others go on.
    try:
        return parse_entry(index, raw, base_url)
    except FhirError as exc:
        entry = BundleEntry(
            index=index,
            method="",
            resource_type="",
            resource_id=None,
            query=None,
            version=None,
            full_url=None,
            resource=None,
        )
        entry.error = exc
        return entry


def _check_unique_targets(entries: list[BundleEntry]) -> None:
    """A transaction may not touch the same resource twice (spec: 400), nor reuse a fullUrl."""
    seen: set[tuple[str, str]] = set()
    urls: set[str] = set()
    for entry in entries:
        if entry.method in ("PUT", "PATCH", "DELETE") and entry.resource_id is not None:
            key = (entry.resource_type, entry.resource_id)
            if key in seen:
                raise _invalid(
                    entry.where, "the transaction changes this resource twice", "duplicate"
                )
            seen.add(key)
        if entry.full_url is not None and entry.method in ("POST", "PUT"):
            if entry.full_url in urls:
                raise _invalid(entry.where, "fullUrl is used by two entries", "duplicate")
            urls.add(entry.full_url)
