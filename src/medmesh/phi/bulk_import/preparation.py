"""Import lines and transactions' creates validated, sealed and indexed: the preparer.

A resource's work that needs no database — parsing it, validating it against R4, bringing its
references to their canonical form, sealing version 1 and computing its index rows — is most
of what a bulk load costs; the database writes and the audit records are the rest. A
:class:`LinePreparer` does the first part for a chunk of NDJSON lines or a transaction's
creates, in the worker processes of :mod:`medmesh.phi.bulk_import.pool` (and in process where
the pool cannot).

What a worker answers is only a proposal. A :class:`Prepared` resource is taken as a create
only when it does not exist and the caller's policy grants the create without looking into the
resource (a ``?category=`` scope needs the resource): such resources, updates, and whatever a
worker could not prepare take the service's own path. A :class:`Rejected` import line is
final (the checks it failed depend on the line alone); a transaction's entry refused by a
worker is checked again by the service, which raises the entry's error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from medmesh.phi.fhir import jsontext
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.references import LocalBases
from medmesh.phi.fhir.types import SUPPORTED_TYPES, is_valid_id
from medmesh.phi.fhir.validation import validate_resource
from medmesh.phi.protection import PhiProtection
from medmesh.phi.resources.storage import seal_version
from medmesh.phi.search.extract import IndexValues, index_values
from medmesh.phi.search.index import SearchIndex
from medmesh.platform.crypto import BatchSealer
from medmesh.platform.errors import MedmeshError
from medmesh.platform.ids import uuid7_hex

Line = tuple[int, bytes]
#: A resource to prepare: a number to answer it by, its type, its id and its JSON text.
Item = tuple[int, str, str, bytes]


class Rejected(NamedTuple):
    """A line refused for what it holds: an OperationOutcome issue's code, message and path.

    (Tuples: a chunk's answers cross a pipe, and tuples pickle at half a dataclass's cost.)"""

    number: int
    code: str
    message: str
    path: str | None = None

    @classmethod
    def of(cls, number: int, exc: MedmeshError) -> Rejected:
        """The rejection of a line whose check raised ``exc`` (a 4xx)."""
        expression = exc.extra.get("expression")
        path = expression[0] if isinstance(expression, list) and expression else None
        return cls(number, str(exc.extra.get("issue_code") or "invalid"), exc.message, path)


@dataclass(slots=True)
class Parsed:
    """A line that is a JSON object of a type stored here with a valid id."""

    number: int
    resource: dict[str, Any]
    resource_type: str
    resource_id: str


class Prepared(NamedTuple):
    """A valid line as version 1 of a new resource: its sealed body and index rows."""

    number: int
    resource_type: str
    resource_id: str
    #: The compartment the stored resource is in (the row's ``patient_id``).
    patient_id: str | None
    #: The patient a create's policy check asks about (None for a Patient itself).
    policy_patient: str | None
    body: bytes
    #: Its index rows, ready to insert.
    rows: IndexValues


def parse_line(line: Line, expected_type: str | None) -> Parsed | Rejected | None:
    """A line as a resource of ``expected_type`` (None: any stored type); None for a blank
    line. A line without an id gets a server id."""
    number, text = line
    if not text.strip():
        return None
    try:
        resource = jsontext.loads(text)
    except ValueError:
        return Rejected(number, "structure", "not JSON")
    if not isinstance(resource, dict):
        return Rejected(number, "structure", "not a JSON object")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in SUPPORTED_TYPES:
        return Rejected(
            number, "not-supported", "resourceType is missing or not a type stored here"
        )
    if expected_type is not None and resource_type != expected_type:
        return Rejected(number, "invalid", f"a {resource_type} in a file of {expected_type}")
    resource_id = resource.get("id")
    if resource_id is None:
        resource_id = resource["id"] = uuid7_hex()
    if not isinstance(resource_id, str) or not is_valid_id(resource_id):
        return Rejected(number, "value", "id is not a valid FHIR id", f"{resource_type}.id")
    return Parsed(number, resource, resource_type, resource_id)


class LinePreparer:
    """What a worker does with a chunk (pure computation; also run in process by tests)."""

    def __init__(self, protection: PhiProtection, max_depth: int) -> None:
        self.protection = protection
        self.index = SearchIndex(protection)
        self.max_depth = max_depth

    def prepare(
        self,
        chunk: list[Line],
        expected_type: str | None,
        base_urls: tuple[str, ...],
        now: datetime,
    ) -> list[Prepared | Rejected | None]:
        bases, batch = LocalBases(*base_urls), self.protection.keys.batch()
        return [self._line(line, expected_type, bases, now, batch) for line in chunk]

    def prepare_resources(
        self, items: list[Item], base_urls: tuple[str, ...], now: datetime
    ) -> list[Prepared | Rejected]:
        """Resources of a transaction (``(entry index, type, id, JSON)``: its POST entries,
        references rewritten), each as version 1 under the id the Bundle gave it."""
        bases, batch = LocalBases(*base_urls), self.protection.keys.batch()
        return [
            self._resource(Parsed(number, jsontext.loads(text), kind, rid), bases, now, batch)
            for number, kind, rid, text in items
        ]

    def _line(
        self,
        line: Line,
        expected_type: str | None,
        bases: LocalBases,
        now: datetime,
        batch: BatchSealer,
    ) -> Prepared | Rejected | None:
        parsed = parse_line(line, expected_type)
        if not isinstance(parsed, Parsed):
            return parsed
        return self._resource(parsed, bases, now, batch)

    def _resource(
        self, parsed: Parsed, bases: LocalBases, now: datetime, batch: BatchSealer
    ) -> Prepared | Rejected:
        """A valid resource as version 1, sealed under ``batch``'s data key (the chunk's or the
        transaction share's: one data key a unit instead of one a resource)."""
        resource, resource_type = parsed.resource, parsed.resource_type
        try:
            validate_resource(
                resource,
                expected_type=resource_type,
                max_depth=self.max_depth,
                bases=lambda: bases,
            )
        except MedmeshError as exc:
            if exc.status >= 500:
                raise
            return Rejected.of(parsed.number, exc)
        policy_patient = compartment_patient(resource) if resource_type != "Patient" else None
        stored, body = seal_version(self.protection, resource, parsed.resource_id, 1, now, batch)
        return Prepared(
            parsed.number,
            resource_type,
            parsed.resource_id,
            stored.patient_id,
            policy_patient,
            body,
            index_values(
                resource_type, parsed.resource_id, self.index.rows(resource_type, stored.resource)
            ),
        )
