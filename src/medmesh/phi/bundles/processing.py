"""One Bundle being processed: targets of its entries, its references, then the entries themselves.

Transaction (all or nothing, FHIR order DELETE, POST, PUT, GET): deletes run, then
every entry's target is known (``ifNoneExist`` and conditional PUT matches, fresh
ids for the other POSTs), every placeholder and conditional reference is rewritten,
every create is checked and all of them are written together; updates and reads
follow (a large transaction of creates only may be written whole by a preparation worker:
:meth:`BundleRun.prepare_creates`). The first failure raises, naming the entry, and the
request's session rolls back. Batch: the same steps per entry; an entry that fails answers with its
OperationOutcome, and one that writes runs in a savepoint so a failure undoes only it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bulk_import.preparation import Item, Prepared, Rejected
from medmesh.phi.bulk_import.writing import BundlePlan, WrittenBundle
from medmesh.phi.bundles.references import (
    conditional_target,
    placeholder_keys,
    reference_holders,
    rewrite,
)
from medmesh.phi.bundles.repository import BundleRepository
from medmesh.phi.bundles.requests import ORDER, BundleEntry
from medmesh.phi.bundles.staging import CreateStager
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir import jsontext
from medmesh.phi.fhir.errors import FhirError, InvalidResource, VersionConflict, operation_outcome
from medmesh.phi.fhir.types import fhir_instant, is_valid_id
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.resources.stored import Stored
from medmesh.platform.db import utcnow
from medmesh.platform.errors import MedmeshError
from medmesh.platform.ids import uuid7_hex

if TYPE_CHECKING:
    from medmesh.phi.search.service import SearchService

_ISSUE_CODES = {
    400: "invalid",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    422: "processing",
}


def status_line(code: int) -> str:
    """``code`` with its reason phrase, as a Bundle response entry's ``status``."""
    return _STATUS_LINES.get(code) or str(code)


_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


def entry_failure(entry: BundleEntry, error: MedmeshError) -> FhirError:
    """``error`` as the failure of ``entry`` (same status, the entry named in message and expression)."""
    message = (
        error.message
        if error.message.startswith(entry.where)
        else f"{entry.where}: {error.message}"
    )
    issue_code = str(error.extra.get("issue_code") or _ISSUE_CODES.get(error.status, "processing"))
    return FhirError(message, status=error.status, issue_code=issue_code, expression=[entry.where])


#: The fewest creates a transaction has prepared by the preparation workers (fewer: the
#: round trip to the workers costs more than it spares).
PREPARED_CREATES = 64


def new_id() -> str:
    """A server-assigned id: time-ordered, so an import appends to the B-trees (platform.ids)."""
    return uuid7_hex()


class BundleRun:
    def __init__(
        self,
        resources: ResourceService,
        search: SearchService,
        session: AsyncSession,
        ctx: FhirContext,
        entries: list[BundleEntry],
        prefer: str | None,
        preparation: PreparationPool | None = None,
    ) -> None:
        self.resources = resources
        self.preparation = preparation
        self.search = search
        self.session = session
        self.ctx = ctx
        self.entries = entries
        self.prefer = prefer
        self.stager = CreateStager(resources, utcnow())
        #: fullUrl (and ``Type/id`` of absolute fullUrls) -> ``Type/id``.
        self.targets: dict[str, str] = {}
        #: conditional reference -> the ids it matches.
        self.matches: dict[str, list[str]] = {}
        #: (type, query) of ``ifNoneExist`` entries -> ``Type/id``: later identical queries point there.
        self.local: dict[tuple[str, str], str] = {}
        self.patients: set[str] = set()
        #: ``Type/id`` -> what this Bundle created.
        self.created: dict[str, Stored] = {}
        #: Whether a preparation worker wrote the Bundle's record (``fhir.transaction``).
        self.audited = False

    # --- the two kinds ------------------------------------------------------------------------

    async def transaction(self) -> None:
        ordered = sorted(self.entries, key=lambda e: (ORDER[e.method], e.index))
        entry: BundleEntry | None = None
        try:
            for entry in ordered:
                if entry.method == "DELETE":
                    await self.run_entry(entry)
            for entry in ordered:
                await self.resolve_target(entry)
            for entry in ordered:
                await self.rewrite_references(entry)
            prepared = await self.prepare_creates(ordered)
            if self.audited:  # a worker wrote every create and the Bundle's record
                return
            for entry in ordered:
                if entry.method == "POST":
                    await self.stage_create(entry, prepared.get(entry.index))
            entry = None
            await self.stager.flush(self.session, self.ctx, bundle="transaction")
            for entry in ordered:
                if entry.method not in ("DELETE", "POST"):
                    await self.run_entry(entry)
        except MedmeshError as exc:
            if exc.status >= 500 or entry is None:
                raise
            raise entry_failure(entry, exc) from None

    async def batch(self) -> None:
        live = [e for e in self.entries if e.error is None]
        for entry in live:
            await self._guarded(entry, self.resolve_target(entry))
        for entry in live:
            if entry.error is None:
                await self._guarded(entry, self.rewrite_references(entry))
            if entry.error is not None:
                continue
            if entry.method == "POST":
                await self._guarded(entry, self.stage_create(entry))
                continue
            # Held creates are written before the savepoint, so that this entry's failure cannot undo them.
            await self.stager.flush(self.session, self.ctx, bundle="batch")
            try:
                async with self.session.begin_nested():
                    await self.run_entry(entry)
            except MedmeshError as exc:
                if exc.status >= 500:
                    raise
                entry.error = exc
        await self.stager.flush(self.session, self.ctx, bundle="batch")

    async def _guarded(self, entry: BundleEntry, step: Awaitable[None]) -> None:
        try:
            await step
        except MedmeshError as exc:
            if exc.status >= 500:
                raise
            entry.error = exc

    # --- targets and references ---------------------------------------------------------------

    async def _match(self, resource_type: str, query: str) -> list[str]:
        return await self.search.match(self.session, self.ctx, resource_type, query)

    async def resolve_target(self, entry: BundleEntry) -> None:
        """Decide which resource the entry writes: fresh id, ``ifNoneExist`` match, conditional PUT."""
        if entry.method == "POST":
            if entry.if_none_exist:
                key = (entry.resource_type, entry.if_none_exist)
                known = self.local.get(key)
                ids = [known.partition("/")[2]] if known else await self._match(*key)
                if len(ids) > 1:
                    raise VersionConflict(
                        "ifNoneExist matches more than one resource", issue_code="duplicate"
                    )
                entry.existing = bool(ids)
                entry.resource_id = ids[0] if ids else new_id()
                self.local[key] = f"{entry.resource_type}/{entry.resource_id}"
            else:
                entry.resource_id = new_id()
        elif entry.method == "PUT" and entry.resource_id is None:
            ids = await self._match(entry.resource_type, entry.query or "")
            if len(ids) > 1:
                raise VersionConflict(
                    "the conditional update matches more than one resource", issue_code="duplicate"
                )
            given = entry.resource.get("id") if entry.resource else None
            if ids and given is not None and given != ids[0]:
                raise InvalidResource(
                    "the resource id differs from the resource the condition matches"
                )
            if ids:
                entry.resource_id = ids[0]
            elif isinstance(given, str) and is_valid_id(given):
                entry.resource_id = given  # no match: create-on-update with the client's id
            else:
                entry.resource_id = new_id()
        if entry.full_url and entry.resource_id and entry.method in ("POST", "PUT"):
            target = f"{entry.resource_type}/{entry.resource_id}"
            for url in placeholder_keys(entry.full_url, entry.resource_type, self.ctx.base_url):
                self.targets[url] = target

    async def rewrite_references(self, entry: BundleEntry) -> None:
        if entry.resource is None or entry.method not in ("POST", "PUT"):
            return
        holders = reference_holders(entry.resource)
        conditionals: dict[str, str] = {}
        for holder in holders:
            reference: str = holder["reference"]
            if reference in self.targets:
                continue
            target = conditional_target(reference, lambda: self.ctx.local_bases)
            if target is None:
                continue
            ids = self.matches.get(reference)
            if ids is None:
                local = self.local.get(target)
                ids = [local.partition("/")[2]] if local else await self._match(*target)
                self.matches[reference] = ids
            if len(ids) != 1:
                kind = "no resource" if not ids else "more than one resource"
                raise FhirError(
                    f"a conditional reference to {target[0]} matches {kind}",
                    status=404 if not ids else 412,
                    issue_code="not-found" if not ids else "duplicate",
                )
            conditionals[reference] = f"{target[0]}/{ids[0]}"
        rewrite(holders, self.targets, conditionals, entry.where)

    # --- the interactions ---------------------------------------------------------------------

    async def prepare_creates(self, ordered: list[BundleEntry]) -> dict[int, Prepared | Rejected]:
        """A large transaction's new resources validated, sealed and indexed by the preparation
        workers (by entry index), or nothing: without workers, for fewer than
        :data:`PREPARED_CREATES` creates, or when the answer is to show each resource (the
        workers' canonical form is not sent back). When every entry is such a create and the
        workers may write them (:meth:`_bundle_plan`), one worker also writes them with the
        Bundle's record, and each entry is answered here (:attr:`audited`)."""
        creates = [e for e in ordered if e.method == "POST" and not e.existing]
        pool = self.preparation
        if pool is None or len(creates) < PREPARED_CREATES or self.prefer == "representation":
            return {}
        items: list[Item] = []
        for entry in creates:
            assert entry.resource is not None
            assert entry.resource_id is not None
            text = jsontext.dumps(entry.resource)
            items.append((entry.index, entry.resource_type, entry.resource_id, text))
        base_urls = self.ctx.local_bases.urls
        now = self.stager.now
        plan = self._bundle_plan(pool, creates)
        if plan is None:
            prepared = await pool.prepare_resources(items, base_urls, now)
            return {p.number: p for p in prepared or ()}
        outcome = await pool.bundle_written(pool.submit_bundle_write(items, base_urls, now, plan))
        if isinstance(outcome, WrittenBundle):
            database = self.resources.database
            assert database is not None  # the plan was made for it
            database.others_committed(pool.write_turn)
            await self.resources.auditor.trail.adopt(len(creates) + 1, outcome.audit_head)
            self._written(creates, outcome.patient_ids, outcome.types)
            return {}
        if isinstance(outcome, list):  # handed back: the checks here decide
            return {p.number: p for p in outcome}
        # The worker died: its transaction is wholly committed or wholly absent.
        keys = [(e.resource_type, e.resource_id or "") for e in creates]
        rows = await BundleRepository(self.session).current_many(keys)
        if rows:
            patients = {(r.resource_type, r.id): r.patient_id for r in rows}
            types = frozenset(kind for kind, _ in keys)
            self._written(creates, [patients.get(key) for key in keys], types)
        return {}

    def _bundle_plan(self, pool: PreparationPool, creates: list[BundleEntry]) -> BundlePlan | None:
        """What a worker needs to write this transaction, or None when the service writes it:
        an entry that is not a create with a server id, a type the caller may not create
        whatever it holds (``AccessPolicy.creates_any``), or stores the workers may not write
        to (:meth:`PreparationPool.writes_to`)."""
        if len(creates) != len(self.entries) or any(e.if_none_exist for e in creates):
            return None
        database = self.resources.database
        trail = self.resources.auditor.trail
        if database is None or not pool.writes_to(database, trail.database):
            return None
        types = frozenset(e.resource_type for e in creates)
        if not all(self.ctx.policy.creates_any(kind) for kind in types):
            return None
        auditor = self.resources.auditor
        return BundlePlan(
            database.url,
            trail.database.url,
            trail.base_row(auditor.template(self.ctx, "fhir.create", bundle="transaction")),
            trail.base_row(
                auditor.template(self.ctx, "fhir.transaction", entries=len(self.entries))
            ),
            trail.link_key,
            types,
        )

    def _written(
        self, creates: list[BundleEntry], patient_ids: list[str | None], types: frozenset[str]
    ) -> None:
        """Answer ``creates``, which a worker committed with the Bundle's record."""
        for entry, patient_id in zip(creates, patient_ids, strict=True):
            assert entry.resource is not None
            assert entry.resource_id is not None
            # As for prepared creates, the entry's own JSON stands in for the resource.
            stored = Stored(
                entry.resource,
                entry.resource_type,
                entry.resource_id,
                1,
                self.stager.now,
                patient_id,
            )
            self.created[f"{stored.resource_type}/{stored.id}"] = stored
            self.answer(entry, 201, stored)
        if self.resources.consents is not None and "Consent" in types:
            self.resources.consents.changed()
        self.audited = True

    async def stage_create(
        self, entry: BundleEntry, prepared: Prepared | Rejected | None = None
    ) -> None:
        assert entry.resource is not None
        assert entry.resource_id is not None
        if entry.existing:
            # An earlier entry of this Bundle with the same ifNoneExist created it.
            held = self.created.get(f"{entry.resource_type}/{entry.resource_id}")
            if held is not None:
                self.answer(entry, 200, held)
                return
            # Showing the match is a read (checked and audited); pointing at it is not.
            if self.prefer == "representation":
                stored = await self.resources.read(
                    self.session, self.ctx, entry.resource_type, entry.resource_id
                )
            else:
                stored = await self.resources.current(
                    self.session, entry.resource_type, entry.resource_id
                )
            self.answer(entry, 200, stored)
            return
        if isinstance(prepared, Prepared) and self.ctx.policy.allows(
            "c", entry.resource_type, prepared.policy_patient, entry.resource
        ):
            self.stager.hold_sealed(
                entry.resource_type,
                entry.resource_id,
                prepared.patient_id,
                prepared.body,
                prepared.rows,
            )
            # Answered without the resource (prepare_creates): the entry's own JSON stands in.
            stored = Stored(
                entry.resource,
                entry.resource_type,
                entry.resource_id,
                1,
                self.stager.now,
                prepared.patient_id,
            )
        else:
            # Refused by a worker, or not granted without the checks here: the checks here
            # decide (and raise the entry's error).
            await self.stager.check(self.ctx, entry.resource, entry.resource_type)
            stored = self.stager.hold(entry.resource, entry.resource_id)
        self.created[f"{stored.resource_type}/{stored.id}"] = stored
        self.answer(entry, 201, stored)

    async def run_entry(self, entry: BundleEntry) -> None:
        session, ctx, resources = self.session, self.ctx, self.resources
        if entry.method == "PUT":
            assert entry.resource_id is not None
            resource = entry.resource
            if resource is not None and entry.query and "id" not in resource:
                resource = {**resource, "id": entry.resource_id}
            stored, created = await resources.apply_update(
                session, ctx, entry.resource_type, entry.resource_id, resource, entry.if_match
            )
            self.answer(entry, 201 if created else 200, stored)
        elif entry.method == "DELETE":
            await self.delete(entry)
        elif entry.method in ("GET", "HEAD"):
            await self.get(entry)
        else:
            raise FhirError(
                "PATCH is not supported in bundles", status=405, issue_code="not-supported"
            )

    async def delete(self, entry: BundleEntry) -> None:
        ids = (
            [entry.resource_id]
            if entry.resource_id
            else await self._match(entry.resource_type, entry.query or "")
        )
        if len(ids) > 1:
            raise VersionConflict(
                "the conditional delete matches more than one resource", issue_code="duplicate"
            )
        for resource_id in ids:
            await self.resources.apply_delete(
                self.session, self.ctx, entry.resource_type, resource_id
            )
        entry.answer = {"response": {"status": status_line(204)}}

    async def get(self, entry: BundleEntry) -> None:
        session, ctx = self.session, self.ctx
        if entry.resource_id is None:
            found = await self.search.search(
                session, ctx, entry.resource_type, entry.params, lenient=False
            )
            entry.answer = {"resource": found, "response": {"status": status_line(200)}}
            return
        if entry.version is not None:
            stored = await self.resources.vread(
                session, ctx, entry.resource_type, entry.resource_id, entry.version
            )
        else:
            stored = await self.resources.read(session, ctx, entry.resource_type, entry.resource_id)
        if entry.if_none_match and entry.if_none_match.strip() == stored.etag:
            entry.answer = {"response": {"status": status_line(304), "etag": stored.etag}}
            return
        self.answer(entry, 200, stored, representation=True)

    def answer(
        self, entry: BundleEntry, status: int, stored: Stored, *, representation: bool = False
    ) -> None:
        if stored.patient_id:
            self.patients.add(stored.patient_id)
        path = f"{stored.resource_type}/{stored.id}"
        response: dict[str, Any] = {
            "status": status_line(status),
            "location": f"{path}/_history/{stored.version}",
            "etag": stored.etag,
            "lastModified": fhir_instant(stored.last_updated),
        }
        answer: dict[str, Any] = {"fullUrl": f"{self.ctx.base_url}/{path}", "response": response}
        if representation or self.prefer == "representation":
            answer["resource"] = stored.resource
        elif self.prefer == "OperationOutcome":
            response["outcome"] = operation_outcome(
                "information", "informational", f"{status_line(status)}: {path}"
            )
        entry.answer = answer

    # --- the response -------------------------------------------------------------------------

    def response_entries(self) -> list[dict[str, Any]]:
        out = []
        for entry in self.entries:
            if entry.error is not None:
                failure = entry_failure(entry, entry.error)
                code = str(failure.extra.get("issue_code"))
                out.append(
                    {
                        "response": {
                            "status": status_line(entry.error.status),
                            "outcome": operation_outcome(
                                "error", code, failure.message, [entry.where]
                            ),
                        }
                    }
                )
            else:
                out.append(entry.answer)
        return out

    def failed(self) -> int:
        return sum(1 for e in self.entries if e.error is not None)
