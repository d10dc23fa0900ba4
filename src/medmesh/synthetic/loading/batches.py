"""Patients' transaction Bundles packed into the Bundles a load posts.

Several patients go into one transaction (fewer round trips and commits on the server); each
keeps its ``urn:uuid:`` fullUrls, which are unique across patients, so the server resolves every
reference inside the combined Bundle. A packed Bundle remembers each patient's MRN: after an
attempt whose outcome is unknown (the connection dropped, a 5xx), the loader asks the server
which of those MRNs it already has before posting again, so a retry never duplicates a patient.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

#: HL7 v2 table 0203 "Medical record number".
MRN_TYPE_CODE = "MR"


@dataclass(frozen=True)
class PatientBundle:
    """One patient's transaction Bundle, parsed, with its index in the run and its MRN."""

    index: int
    entries: list[dict[str, Any]]
    mrn: str | None  # "system|value", the token a FHIR identifier search takes

    @property
    def resource_count(self) -> int:
        return len(self.entries)


def medical_record_number(patient: dict[str, Any]) -> str | None:
    """The Patient's MRN as ``system|value`` (its ``MR``-typed identifier, else its first one)."""
    identifiers = [i for i in patient.get("identifier", []) if i.get("system") and i.get("value")]
    for identifier in identifiers:
        codings = identifier.get("type", {}).get("coding", [])
        if any(c.get("code") == MRN_TYPE_CODE for c in codings):
            return f"{identifier['system']}|{identifier['value']}"
    if identifiers:
        return f"{identifiers[0]['system']}|{identifiers[0]['value']}"
    return None


def parse_patient_bundle(index: int, body: bytes | dict[str, Any]) -> PatientBundle:
    """Parse one patient's transaction Bundle (bytes as written, or already a dict)."""
    bundle = orjson.loads(body) if isinstance(body, bytes | bytearray) else body
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise ValueError(f"patient {index}: not a transaction Bundle")
    entries: list[dict[str, Any]] = bundle.get("entry", [])
    patient = next(
        (e["resource"] for e in entries if e.get("resource", {}).get("resourceType") == "Patient"),
        None,
    )
    return PatientBundle(index, entries, medical_record_number(patient) if patient else None)


@dataclass(frozen=True)
class PackedBundle:
    """Consecutive patients posted together as one transaction Bundle."""

    patients: tuple[PatientBundle, ...]

    @property
    def first(self) -> int:
        return self.patients[0].index

    @property
    def last(self) -> int:
        return self.patients[-1].index

    @property
    def resource_count(self) -> int:
        return sum(p.resource_count for p in self.patients)

    def body(self) -> bytes:
        entries = [entry for patient in self.patients for entry in patient.entries]
        return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})

    def without(self, indexes: set[int]) -> PackedBundle | None:
        """This Bundle minus the patients at ``indexes`` (None when nothing is left)."""
        kept = tuple(p for p in self.patients if p.index not in indexes)
        return PackedBundle(kept) if kept else None

    def singles(self) -> list[PackedBundle]:
        return [PackedBundle((patient,)) for patient in self.patients]


def pack(
    patients: Iterable[PatientBundle], batch_size: int, max_entries: int
) -> Iterator[PackedBundle]:
    """Group consecutive patients: at most ``batch_size`` patients and ``max_entries`` entries
    per Bundle (a patient larger than ``max_entries`` goes alone)."""
    current: list[PatientBundle] = []
    entries = 0
    for patient in patients:
        full = len(current) >= batch_size or entries + patient.resource_count > max_entries
        if current and full:
            yield PackedBundle(tuple(current))
            current, entries = [], 0
        current.append(patient)
        entries += patient.resource_count
    if current:
        yield PackedBundle(tuple(current))
