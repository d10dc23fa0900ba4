"""Repair of stored rows written before references were canonical (migration 0005).

Until then an absolute reference to this server (``http://host/fhir/Patient/B``) was
indexed as ``Patient/B`` but put into no compartment, one to another server was indexed as
a local ``Patient/B`` too, and a spelling such as ``Patient/B/`` or ``patient/B`` landed
outside every compartment. The compartment (``patient_id`` of the current row and of each
version) and the reference index rows derive from the encrypted body, so the repair needs
the phi keys: :func:`repair_references` walks the current rows in key order, one page per
call, opens each body, reads its references leniently (:func:`lenient_references`: local
absolute URLs under ``bases`` and evident spellings become ``Type/id``, other servers'
URLs stay external) and rewrites ``patient_id`` and the reference rows where they differ;
then the versions' ``patient_id`` the same way. Bodies are left as they were submitted
(no new version, history unchanged): only what is derived from them changes.

It runs on a synchronous connection, so that Alembic's migration 0005 can run it when the
keys are configured (``MEDMESH_PHI_ENCRYPTION_KEYS`` and ``MEDMESH_PHI_BLIND_INDEX_KEY``),
and :func:`repair_stored_references` (``medmesh admin repair-phi-references``) runs it with
the service's settings otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, literal, select, tuple_, update

from medmesh.phi.config import PhiSettings
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.references import (
    InvalidReference,
    LocalBases,
    canonical_reference,
    lenient_target,
    reference_holders,
)
from medmesh.phi.fhir.types import is_valid_id
from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.protection import PhiProtection, load_protection
from medmesh.phi.search.extract import index_rows
from medmesh.phi.search.models import ReferenceIndexRow
from medmesh.platform.audit import (
    AuditRecord,
    AuditTrail,
    audit_database_for,
    audit_sealing,
    ensure_audit_tables,
)
from medmesh.platform.crypto import DecryptionFailed
from medmesh.platform.db import Database

#: ``(resource_type, id)`` or ``(resource_type, id, version)``: a walk's cursor.
RowKey = tuple[Any, ...]


@dataclass
class RepairReport:
    """What a repair did: rows looked at, compartments and index rows changed."""

    resources: int = 0
    versions: int = 0
    compartments_fixed: int = 0
    versions_fixed: int = 0
    indexes_fixed: int = 0
    unreadable: int = 0
    #: ``Type/id`` of the current rows whose compartment changed (no PHI: ids only).
    changed: list[str] = field(default_factory=list)
    #: The patients whose compartment a resource joined or left.
    patients: set[str] = field(default_factory=set)


def lenient_references(resource: dict[str, Any], bases: LocalBases) -> dict[str, Any]:
    """A copy of a stored resource with its references read as they evidently meant:
    canonical where possible (this server's URLs, ``patient/B``, ``Patient/B/``), external
    and unreadable spellings as they were."""
    fixed = copy.deepcopy(resource)
    for holder, _ in reference_holders(fixed, str(fixed.get("resourceType"))):
        value = holder["reference"]
        if not isinstance(value, str):
            continue
        try:
            holder["reference"] = canonical_reference(value, lambda: bases)
        except InvalidReference:
            target = lenient_target(value, bases)
            if target is not None:
                holder["reference"] = target.reference
    return fixed


class ReferenceRepair:
    """Recomputes compartments and reference index rows from stored bodies, page by page."""

    def __init__(self, protection: PhiProtection, bases: LocalBases, page_size: int = 500) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.protection = protection
        self.bases = bases
        self.page_size = page_size

    def _open(self, body: bytes, key: RowKey, version: int, report: RepairReport) -> Any:
        try:
            resource = self.protection.open(body, key[0], key[1], version)
        except DecryptionFailed:
            report.unreadable += 1
            return None
        return lenient_references(resource, self.bases)

    def current_page(
        self, connection: Connection, after: RowKey | None, report: RepairReport
    ) -> RowKey | None:
        """Repair one page of current rows after ``after``; the last key, None at the end."""
        r = ResourceRow
        stmt = (
            select(r.resource_type, r.id, r.version, r.patient_id, r.body)
            .where(r.body.is_not(None))
            .order_by(r.resource_type, r.id)
            .limit(self.page_size)
        )
        if after is not None:
            stmt = stmt.where(tuple_(r.resource_type, r.id) > tuple_(*map(literal, after)))
        rows = connection.execute(stmt).all()
        for resource_type, resource_id, version, patient_id, body in rows:
            report.resources += 1
            key = (resource_type, resource_id)
            resource = self._open(body, key, version, report)
            if resource is None:
                continue
            patient = compartment_patient(resource)
            if patient != patient_id:
                connection.execute(
                    update(r)
                    .where(r.resource_type == resource_type, r.id == resource_id)
                    .values(patient_id=patient)
                )
                report.compartments_fixed += 1
                report.changed.append(f"{resource_type}/{resource_id}")
                report.patients.update(p for p in (patient, patient_id) if p and is_valid_id(p))
            wanted = index_rows(resource_type, resource, self.protection.blind_index).references
            if self._set_references(connection, key, wanted):
                report.indexes_fixed += 1
        return (rows[-1][0], rows[-1][1]) if len(rows) == self.page_size else None

    def _set_references(
        self, connection: Connection, key: RowKey, wanted: set[tuple[str, str, str]]
    ) -> bool:
        ref = ReferenceIndexRow
        mine = and_(ref.resource_type == key[0], ref.resource_id == key[1])
        stored = {
            (p, t, i)
            for p, t, i in connection.execute(
                select(ref.param, ref.target_type, ref.target_id).where(mine)
            )
        }
        if stored == wanted:
            return False
        connection.execute(delete(ref).where(mine))
        if wanted:
            connection.execute(
                insert(ref),
                [
                    {
                        "resource_type": key[0],
                        "resource_id": key[1],
                        "param": p,
                        "target_type": t,
                        "target_id": i,
                    }
                    for p, t, i in sorted(wanted)
                ],
            )
        return True

    def version_page(
        self, connection: Connection, after: RowKey | None, report: RepairReport
    ) -> RowKey | None:
        """Repair the ``patient_id`` of one page of stored versions after ``after``."""
        v = ResourceVersionRow
        # In the order of the versions' primary key (id first: migration 0009).
        stmt = (
            select(v.id, v.resource_type, v.version, v.patient_id, v.body)
            .where(v.body.is_not(None))
            .order_by(v.id, v.resource_type, v.version)
            .limit(self.page_size)
        )
        if after is not None:
            stmt = stmt.where(
                tuple_(v.id, v.resource_type, v.version) > tuple_(*map(literal, after))
            )
        rows = connection.execute(stmt).all()
        for resource_id, resource_type, version, patient_id, body in rows:
            report.versions += 1
            resource = self._open(body, (resource_type, resource_id), version, report)
            if resource is None:
                continue
            patient = compartment_patient(resource)
            if patient != patient_id:
                connection.execute(
                    update(v)
                    .where(v.resource_type == resource_type, v.id == resource_id)
                    .where(v.version == version)
                    .values(patient_id=patient)
                )
                report.versions_fixed += 1
        return (rows[-1][0], rows[-1][1], rows[-1][2]) if len(rows) == self.page_size else None

    def run(self, connection: Connection) -> RepairReport:
        """Everything, on one connection (the migration's transaction)."""
        report = RepairReport()
        for step in (self.current_page, self.version_page):
            cursor: RowKey | None = None
            while True:
                cursor = step(connection, cursor, report)
                if cursor is None:
                    break
        return report


def bases_of(settings: PhiSettings, extra: Iterable[str] = ()) -> LocalBases:
    """The bases whose absolute references are this server's: the configured one and ``extra``
    (every other base clients reached the service under: ``http://127.0.0.1:8002/fhir`` ...)."""
    return LocalBases(settings.base_url, *extra)


async def repair_stored_references(
    settings: PhiSettings,
    *,
    base_urls: Iterable[str] = (),
    page_size: int = 500,
    actor: str = "cli",
    on_page: Callable[[RepairReport], None] | None = None,
) -> RepairReport:
    """Run the repair on the database of ``settings``, one page per transaction (rerunnable:
    rows already right are left alone); audited as ``phi.references_repaired`` with the
    counts and the ``Type/id`` of every resource whose compartment changed."""
    repair = ReferenceRepair(load_protection(settings), bases_of(settings, base_urls), page_size)
    database = Database(settings.effective_database_url)
    audit_db = audit_database_for(database)
    if audit_db is not database:
        await ensure_audit_tables(audit_db)
    trail = AuditTrail(audit_db, settings.service_name, sealing=audit_sealing(settings))
    await trail.start()
    report = RepairReport()
    outcome = "failure"
    try:
        for step in (repair.current_page, repair.version_page):
            cursor: RowKey | None = None
            while True:
                async with database.engine.begin() as conn:
                    cursor = await conn.run_sync(step, cursor, report)
                if on_page is not None:
                    on_page(report)
                if cursor is None:
                    break
        outcome = "success"
        return report
    finally:
        await trail.record(
            AuditRecord(
                action="phi.references_repaired",
                outcome=outcome,
                actor=actor,
                patient_ids=sorted(report.patients)[:1000],
                resource_type="Resource",
                details={
                    "resources": report.resources,
                    "versions": report.versions,
                    "compartments_fixed": report.compartments_fixed,
                    "versions_fixed": report.versions_fixed,
                    "indexes_fixed": report.indexes_fixed,
                    "unreadable": report.unreadable,
                    "changed": report.changed[:1000],
                },
            )
        )
        await trail.stop()
        await database.dispose()
        if audit_db is not database:
            await audit_db.dispose()
