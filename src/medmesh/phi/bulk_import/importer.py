"""Storing NDJSON lines in chunks: each chunk one transaction, its new resources written together.

A line is a resource with its own id (the Bulk Data layout keeps ids; a line without one gets
a server id). Each line is validated, its references brought to their canonical form and its
write checked against the caller's policy exactly as ``PUT /fhir/{type}/{id}`` would; a line
that fails is rejected (counted, listed with its line number, never its content) and the
others are stored. Resources that do not exist yet are held and written together with the
bundles' create path (:class:`~medmesh.phi.bundles.staging.CreateStager`: one ``fhir.create``
record each, committed as one group before the writes; rows and index rows in multi-row
INSERTs); one that exists is updated as a PUT would (a new version). A chunk commits with the
caller's progress record (``on_commit``) in the same transaction, so what a progress record
says is exactly what is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.bulk_import.progress import FileProgress, rejection
from medmesh.phi.bulk_import.repository import ImportRepository
from medmesh.phi.bundles.staging import CreateStager
from medmesh.phi.collection_pacing import bulk_collection_pacing
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir import jsontext
from medmesh.phi.fhir.types import SUPPORTED_TYPES, is_valid_id
from medmesh.phi.resources.service import ResourceService
from medmesh.platform.db import Database, utcnow
from medmesh.platform.errors import MedmeshError
from medmesh.platform.ids import uuid7_hex

#: Lines a chunk (one transaction) holds.
CHUNK_LINES = 500

Line = tuple[int, bytes]
OnCommit = Callable[[AsyncSession, FileProgress], Awaitable[None]]


def chunks(
    lines: Iterable[bytes], *, after: int = 0, size: int = CHUNK_LINES
) -> Iterator[list[Line]]:
    """``lines`` numbered from 1, those up to ``after`` skipped (already settled), ``size`` at a time."""
    chunk: list[Line] = []
    for number, line in enumerate(lines, start=1):
        if number <= after:
            continue
        chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class _Parsed:
    number: int
    resource: dict[str, Any]
    resource_type: str
    resource_id: str


class NdjsonImporter:
    """Stores NDJSON lines for one caller (``ctx``: its policy decides, its name is audited)."""

    def __init__(
        self, resources: ResourceService, database: Database, ctx: FhirContext, **audit: Any
    ) -> None:
        self.resources = resources
        self.database = database
        self.ctx = ctx
        #: Details every ``fhir.create`` / ``fhir.update`` record of the import carries.
        self.audit = audit

    async def store_chunk(
        self, chunk: list[Line], progress: FileProgress, on_commit: OnCommit | None = None
    ) -> FileProgress:
        """Store one chunk in one transaction; returns the file's progress once it is committed."""
        with bulk_collection_pacing():
            rejected: list[tuple[int, dict[str, Any]]] = []
            parsed = [p for p in (self._parse(line, progress, rejected) for line in chunk) if p]
            async with self.database.unit_of_work() as session:
                async with self.resources.writes.slot(self.ctx.principal, None, "cu"):
                    stored = await self._store(session, parsed, progress.source, rejected)
                issues = [issue for _, issue in sorted(rejected, key=lambda r: r[0])]
                after = progress.after_chunk(chunk[-1][0], stored, issues)
                if on_commit is not None:
                    await on_commit(session, after)
        return after

    def _parse(
        self, line: Line, progress: FileProgress, rejected: list[tuple[int, dict[str, Any]]]
    ) -> _Parsed | None:
        number, text = line
        if not text.strip():
            return None

        def reject(code: str, message: str, path: str | None = None) -> None:
            rejected.append((number, rejection(progress.source, number, code, message, path)))

        try:
            resource = jsontext.loads(text)
        except ValueError:
            reject("structure", "not JSON")
            return None
        if not isinstance(resource, dict):
            reject("structure", "not a JSON object")
            return None
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or resource_type not in SUPPORTED_TYPES:
            reject("not-supported", "resourceType is missing or not a type stored here")
            return None
        if progress.resource_type is not None and resource_type != progress.resource_type:
            reject("invalid", f"a {resource_type} in a file of {progress.resource_type}")
            return None
        resource_id = resource.get("id")
        if resource_id is None:
            resource_id = resource["id"] = uuid7_hex()
        if not isinstance(resource_id, str) or not is_valid_id(resource_id):
            reject("value", "id is not a valid FHIR id", f"{resource_type}.id")
            return None
        return _Parsed(number, resource, resource_type, resource_id)

    async def _store(
        self,
        session: AsyncSession,
        parsed: list[_Parsed],
        source: str,
        rejected: list[tuple[int, dict[str, Any]]],
    ) -> int:
        resources, ctx = self.resources, self.ctx
        present = await ImportRepository(session).present(
            {(p.resource_type, p.resource_id) for p in parsed}
        )
        stager = CreateStager(resources, utcnow(), method="PUT")
        held: set[tuple[str, str]] = set()
        stored = 0
        for line in parsed:
            key = (line.resource_type, line.resource_id)
            try:
                if key in present or key in held:
                    # An update (a new version), as PUT makes it; a resource held earlier in
                    # this chunk is written first.
                    await stager.flush(session, ctx, **self.audit)
                    await resources.apply_update(
                        session, ctx, line.resource_type, line.resource_id, line.resource, None
                    )
                else:
                    await stager.check(ctx, line.resource, line.resource_type)
                    stager.hold(line.resource, line.resource_id)
                    held.add(key)
            except MedmeshError as exc:
                if exc.status >= 500:
                    raise
                code = str(exc.extra.get("issue_code") or "invalid")
                expression = exc.extra.get("expression")
                path = expression[0] if isinstance(expression, list) and expression else None
                rejected.append(
                    (line.number, rejection(source, line.number, code, exc.message, path))
                )
                continue
            stored += 1
        await stager.flush(session, ctx, **self.audit)
        return stored
