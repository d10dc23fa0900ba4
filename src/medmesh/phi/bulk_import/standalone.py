"""``medmesh phi import DIR``: NDJSON files on disk loaded straight into phi's database.

It runs beside (or without) a serving phi, on the same settings: the same keys seal the
resources, the same blind-index key indexes them, and every resource is audited in phi's own
trail (actor ``cli``, client ``medmesh-cli``). Each chunk commits on its own, so an import
stopped half-way keeps what it reported, and running it again updates what is there (each
line a new version) rather than duplicating it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

from medmesh.phi.access.consent import ConsentRegistry
from medmesh.phi.access.policy import AccessPolicy
from medmesh.phi.admission import WriteAdmission
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.bulk_import.importer import NdjsonImporter, chunks
from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bulk_import.preparation import Line
from medmesh.phi.bulk_import.progress import FileProgress
from medmesh.phi.collection_pacing import bulk_collection_pacing
from medmesh.phi.config import PhiSettings
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.types import SUPPORTED_TYPES
from medmesh.phi.protection import load_protection
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.search.index import SearchIndex
from medmesh.platform.audit import (
    AuditTrail,
    audit_database_for,
    audit_sealing,
    ensure_audit_tables,
)
from medmesh.platform.db import Database, utcnow
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import Principal, ScopeSet

#: ``Patient.ndjson``, ``Observation.000.ndjson``, ``Observation-2.ndjson``: the type a file holds.
_FILE_TYPE = re.compile(r"^([A-Z][A-Za-z]+)(?:[.\-_][^/]*)?\.ndjson$")
CLI_SCOPE = "system/*.cu"


def ndjson_files(directory: Path) -> list[Path]:
    """The ``*.ndjson`` files of ``directory`` and of its ``ndjson/`` folder (what synthetic
    writes), by name."""
    found = sorted(directory.glob("*.ndjson")) + sorted((directory / "ndjson").glob("*.ndjson"))
    return [path for path in found if path.is_file()]


def file_type(name: str) -> str | None:
    """The resource type a Bulk Data file name announces, when it names one stored here."""
    match = _FILE_TYPE.match(name)
    if match is None or match.group(1) not in SUPPORTED_TYPES:
        return None
    return match.group(1)


def cli_context(settings: PhiSettings) -> FhirContext:
    """The caller an import from the command line acts as: the operator, creating and
    updating any type (``system/*.cu``), from this machine."""
    now = utcnow()
    principal = Principal(
        sub="cli",
        client_id="medmesh-cli",
        roles=frozenset({"admin"}),
        scopes=ScopeSet(CLI_SCOPE),
        raw_scope=CLI_SCOPE,
        patient=None,
        fhir_user=None,
        audience=("medmesh-phi",),
        jti=None,
        issued_at=now,
        expires_at=now + timedelta(days=1),
    )
    base = settings.base_url.rstrip("/") or f"http://127.0.0.1:{settings.effective_port}/fhir"
    return FhirContext(
        origin=RequestOrigin(ip="127.0.0.1", principal=principal),
        policy=AccessPolicy(principal),
        base_url_of=lambda: base,
    )


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


async def _chunks_of(paths: list[Path], size: int) -> AsyncIterator[tuple[int, list[Line]]]:
    """Every file's chunks, one file after the other, each with its file's index."""
    for index, path in enumerate(paths):
        for chunk in chunks(_lines(path), size=size):
            yield index, chunk


async def import_directory(
    settings: PhiSettings,
    directory: Path,
    *,
    chunk_lines: int = 500,
    on_chunk: Callable[[FileProgress], None] | None = None,
    workers: int | None = None,
) -> list[FileProgress]:
    """Load every NDJSON file of ``directory`` into the database of ``settings``; returns each
    file's progress (lines, stored, rejected and the rejected lines' issues). ``workers``:
    preparation processes (default: the ``import_workers`` setting; 0: none)."""
    protection = load_protection(settings)
    pool: PreparationPool | None = None
    database = Database(settings.effective_database_url)
    audit_db = audit_database_for(database)
    if audit_db is not database:
        await ensure_audit_tables(audit_db)
    trail = AuditTrail(audit_db, settings.service_name, sealing=audit_sealing(settings))
    await trail.start()
    try:
        resources = ResourceService(
            protection,
            SearchIndex(protection),
            PhiAuditor(trail),
            settings.max_json_depth,
            writes=WriteAdmission(1, 1),
            consents=ConsentRegistry(protection),
        )
        workers = settings.import_workers if workers is None else workers
        pool = PreparationPool(protection, settings.max_json_depth, workers) if workers else None
        importer = NdjsonImporter(
            resources, database, cli_context(settings), pool=pool, bulk="ndjson"
        )
        paths = ndjson_files(directory)
        reports = [FileProgress(str(p.relative_to(directory)), file_type(p.name)) for p in paths]
        # One bulk unit for the collector from the first chunk to the last: the thresholds
        # put back between chunks start a collection while a chunk's objects are still alive.
        with bulk_collection_pacing():
            async for _, progress in importer.store_chunks(_chunks_of(paths, chunk_lines), reports):
                if on_chunk is not None:
                    on_chunk(progress)
        return reports
    finally:
        if pool is not None:
            pool.close()
        await trail.stop()
        await database.dispose()
        if audit_db is not database:
            await audit_db.dispose()
