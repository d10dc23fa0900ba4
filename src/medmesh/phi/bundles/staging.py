"""The lean path of a Bundle's creates: check each entry, then store them together.

A POST entry gets a fresh server id, so nothing can be in its way: it is validated
and checked against the caller's policy like ``ResourceService.create`` does, then
held until :meth:`CreateStager.flush` audits them (one ``fhir.create`` record per
resource, in one group commit) and then writes all of them with two multi-row INSERTs
(current rows and versions) and their search index rows (deferred, so they too go in
as multi-row INSERTs). Everything that can refuse an entry happens before anything is
written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.bundles.repository import (
    add_new_resource,
    new_resource_rows,
    new_resource_statements,
)
from medmesh.phi.context import FhirContext
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.resources.stored import Stored
from medmesh.phi.search.extract import IndexValues, index_values
from medmesh.platform.crypto import BatchSealer
from medmesh.platform.db import execute_together


class CreateStager:
    def __init__(self, resources: ResourceService, now: datetime, *, method: str = "POST") -> None:
        self.resources = resources
        self.now = now
        #: The method the versions record (``PUT`` for resources that come with their own id).
        self.method = method
        self._held: list[tuple[str, str, str | None, IndexValues]] = []
        self._current, self._versions = new_resource_rows()
        #: The data key the bodies this stager seals share (one bulk unit, one key), drawn at
        #: the first: a unit prepared by the workers seals nothing here.
        self._batch: BatchSealer | None = None

    async def check(self, ctx: FhirContext, resource: dict[str, Any], resource_type: str) -> None:
        """Validate ``resource`` and check that the caller may create it (403 is audited)."""
        await self.resources.check_create(ctx, resource, resource_type)

    def hold(self, resource: dict[str, Any], resource_id: str) -> Stored:
        """Version 1 of a checked resource with a new id, to be written by :meth:`flush`."""
        if self._batch is None:
            self._batch = self.resources.protection.keys.batch()
        stored, body = self.resources.seal_version(resource, resource_id, 1, self.now, self._batch)
        rows = self.resources.index.rows(stored.resource_type, stored.resource)
        index = index_values(stored.resource_type, resource_id, rows)
        self.hold_sealed(stored.resource_type, resource_id, stored.patient_id, body, index)
        return stored

    def hold_sealed(
        self,
        resource_type: str,
        resource_id: str,
        patient_id: str | None,
        body: bytes,
        index: IndexValues,
    ) -> None:
        """Version 1 of a checked resource sealed beforehand (at :attr:`now`, with these keys)
        and its index rows, to be written by :meth:`flush`."""
        add_new_resource(
            self._current,
            self._versions,
            self.now,
            self.method,
            resource_type,
            resource_id,
            patient_id,
            body,
        )
        self._held.append((resource_type, resource_id, patient_id, index))

    async def flush(self, session: AsyncSession, ctx: FhirContext, **details: Any) -> None:
        """Audit every held resource (one ``fhir.create`` record each, committed together),
        then write them and their index rows.

        The records come first, as for single writes (``ResourceService``): the writes then
        hold SQLite's write lock only for the statements, never while the audit trail commits.
        """
        if not self._held:
            return
        held, self._held = self._held, []
        current, versions = self._current, self._versions
        self._current, self._versions = new_resource_rows()
        await self.resources.auditor.record_many(
            ctx,
            "fhir.create",
            [(resource_type, id_, patient) for resource_type, id_, patient, _ in held],
            **details,
        )
        index = self.resources.index
        rows = {(resource_type, id_): values for resource_type, id_, _, values in held}
        # Rows, versions and index rows in one trip: an executemany per table (the index rows
        # join a deferred block's instead, when the caller holds one).
        await execute_together(
            session,
            [
                *new_resource_statements(current, versions),
                *index.new_resources_inserts(session, rows),
            ],
        )
        if self.resources.consents is not None and any(h[0] == "Consent" for h in held):
            self.resources.consents.changed()
