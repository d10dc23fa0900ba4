"""FHIR search: searchset Bundles with keyset paging, ``_include``/``_revinclude``, and history.

Every query is narrowed in the repository by the caller's reach (patient compartments,
Consent denials, ``?category=`` limits), includes and chains too (a chain needs search on
every type it traverses); decrypted rows are checked against the policy once more before
they are returned; every search is audited with the patients whose data it returned.
Conditional operations (``If-None-Exist``, conditional update and delete, conditional
references) go through :meth:`SearchService.match`: a search by the caller, under the same
permissions, so that a match the caller could not find cannot change their outcome.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.access.policy import AccessDenied
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.config import PhiSettings
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.errors import operation_outcome
from medmesh.phi.fhir.types import fhir_instant
from medmesh.phi.models import ResourceRow
from medmesh.phi.protection import PhiProtection
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.resources.stored import Stored, check_type
from medmesh.phi.search.access import (
    Reach,
    chain_reach,
    reach,
    reach_conditions,
    require_reach,
)
from medmesh.phi.search.extract import canonical_search_params
from medmesh.phi.search.filters import ChainReach, ClauseCompiler
from medmesh.phi.search.history import HistoryReader
from medmesh.phi.search.paging import decode_cursor, encode_cursor, page_url
from medmesh.phi.search.query import IncludeSpec, QueryParser, SearchError, SearchQuery
from medmesh.phi.search.repository import SearchRepository, sort_keys
from medmesh.platform.db import utcnow

#: Most ids ``match`` returns (callers only tell none, one and several apart).
MATCH_LIMIT = 10


class SearchService:
    def __init__(
        self,
        settings: PhiSettings,
        protection: PhiProtection,
        resources: ResourceService,
        auditor: PhiAuditor,
    ) -> None:
        self.settings = settings
        self.protection = protection
        self.resources = resources
        self.auditor = auditor
        self.parser = QueryParser(settings.default_count, settings.max_count)
        self.compiler = ClauseCompiler(protection.blind_index)
        self.history_reader = HistoryReader(
            resources, auditor, settings.default_count, settings.max_count
        )

    async def search(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource_type: str,
        params: list[tuple[str, str]],
        *,
        lenient: bool,
    ) -> dict[str, Any]:
        """The searchset Bundle of ``resource_type`` for ``params`` (one page)."""
        check_type(resource_type)
        found = await self._reach(ctx, resource_type, "fhir.search")
        params = canonical_search_params(resource_type, params, lambda: ctx.local_bases)
        query = self.parser.parse(resource_type, params, lenient=lenient)
        chained = await self._chain_reach(ctx, resource_type, query, "fhir.search")
        criteria = [self.compiler.condition(resource_type, c, chained) for c in query.clauses]
        conditions = [*criteria, reach_conditions(self.compiler, found)]
        repo = SearchRepository(session)
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": uuid.uuid4().hex,
            "meta": {"lastUpdated": fhir_instant(utcnow())},
            "type": "searchset",
        }
        self_link = {
            "relation": "self",
            "url": page_url(ctx.base_url, resource_type, query.echo, query.cursor),
        }
        if query.summary_count or query.count == 0:
            bundle["total"] = await self._total(repo, ctx, found, criteria, conditions)
            bundle["link"] = [self_link]
            self._outcome(bundle, query)
            await self.auditor.record(
                ctx,
                "fhir.search",
                resource_type=resource_type,
                patients=[],
                count=0,
                total=bundle["total"],
                params=self._names(params),
            )
            return bundle

        keys = sort_keys(resource_type, query.sort)
        position, backwards = (
            decode_cursor(query.cursor, len(keys)) if query.cursor else (None, False)
        )
        fetched = await repo.page(
            resource_type, conditions, keys, position, backwards=backwards, limit=query.count + 1
        )
        more = len(fetched) > query.count
        page = (fetched[1:] if backwards else fetched[: query.count]) if more else fetched

        # The total is given when asked (_total=accurate) or free (everything fits this page);
        # counting every match of a broad search would cost more than the page itself.
        if query.total == "accurate":
            bundle["total"] = await self._total(repo, ctx, found, criteria, conditions)
        elif query.total != "none" and query.cursor is None and not more:
            bundle["total"] = len(page)
        links = [self_link]
        if page and (more or backwards):
            links.append(
                {
                    "relation": "next",
                    "url": page_url(
                        ctx.base_url, resource_type, query.echo, encode_cursor(page[-1][1])
                    ),
                }
            )
        if page and ((backwards and more) or (not backwards and query.cursor is not None)):
            links.append(
                {
                    "relation": "previous",
                    "url": page_url(
                        ctx.base_url,
                        resource_type,
                        query.echo,
                        encode_cursor(page[0][1], backwards=True),
                    ),
                }
            )
        bundle["link"] = links

        matches = self._open(ctx, found, [row for row, _ in page])
        included, capped = await self._included(session, ctx, query, [s.id for s in matches])
        bundle["entry"] = [s.search_entry(ctx.base_url, "match") for s in matches] + [
            s.search_entry(ctx.base_url, "include") for s in included
        ]
        self._outcome(bundle, query)
        if capped:
            self._warn(
                bundle, f"_include/_revinclude results were capped at {self.settings.max_include}"
            )
        await self.auditor.record(
            ctx,
            "fhir.search",
            resource_type=resource_type,
            patients=[s.patient_id for s in matches] + [s.patient_id for s in included],
            count=len(matches),
            included=len(included),
            params=self._names(params),
        )
        return bundle

    async def match(
        self, session: AsyncSession, ctx: FhirContext, resource_type: str, query: str
    ) -> list[str]:
        """Ids of ``resource_type`` matching a query string (conditional create/update/delete/reference).

        Evaluated as a search by the caller: it needs search on the type and on every type a
        chain traverses (403 before anything is evaluated), and it finds only what that
        search would return, so a resource the caller may not see never decides the outcome.
        """
        check_type(resource_type)
        found = await self._reach(ctx, resource_type, "fhir.search")
        text = query.split("?", 1)[1] if "?" in query else query
        params = parse_qsl(text, keep_blank_values=True)
        params = canonical_search_params(resource_type, params, lambda: ctx.local_bases)
        parsed = self.parser.parse(resource_type, params, lenient=False)
        if not parsed.clauses:
            raise SearchError("a conditional request needs search criteria", issue_code="invalid")
        chained = await self._chain_reach(ctx, resource_type, parsed, "fhir.search")
        conditions = [self.compiler.condition(resource_type, c, chained) for c in parsed.clauses]
        conditions.append(reach_conditions(self.compiler, found))
        rows = await SearchRepository(session).rows(resource_type, conditions, MATCH_LIMIT)
        return [stored.id for stored in self._open(ctx, found, list(rows))]

    async def history(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource_type: str | None,
        resource_id: str | None,
        params: list[tuple[str, str]],
    ) -> dict[str, Any]:
        """A history Bundle (newest first) of the system, a type or one resource."""
        return await self.history_reader.history(session, ctx, resource_type, resource_id, params)

    # --- parts ----------------------------------------------------------------------------------

    async def _reach(self, ctx: FhirContext, resource_type: str, action: str) -> Reach:
        try:
            return require_reach(ctx, resource_type)
        except AccessDenied:
            await self.auditor.record(
                ctx, action, resource_type=resource_type, outcome="failure", reason="forbidden"
            )
            raise

    async def _chain_reach(
        self, ctx: FhirContext, resource_type: str, query: SearchQuery, action: str
    ) -> ChainReach:
        try:
            return chain_reach(ctx, self.compiler, query.clauses)
        except AccessDenied:
            await self.auditor.record(
                ctx, action, resource_type=resource_type, outcome="failure", reason="forbidden"
            )
            raise

    async def _total(
        self,
        repo: SearchRepository,
        ctx: FhirContext,
        found: Reach,
        criteria: list[ColumnElement[bool]],
        conditions: list[ColumnElement[bool]],
    ) -> int:
        """The number of matches; break-glass is flagged when it changed the number (a count
        has no per-row check to flag it)."""
        total = await repo.count(found.resource_type, conditions)
        if found.breaks_glass and not ctx.policy.break_glass_used:
            unbroken = reach_conditions(self.compiler, found, break_glass=False)
            if await repo.count(found.resource_type, [*criteria, unbroken]) != total:
                ctx.policy.break_glass_used = True
        return total

    def _open(self, ctx: FhirContext, found: Reach, rows: list[ResourceRow]) -> list[Stored]:
        """Decrypted rows the policy allows (the SQL narrowing already did; this is the backstop)."""
        opened = []
        for row in rows:
            stored = self.resources.open_row(row)
            if ctx.policy.allows(
                found.permission, row.resource_type, row.patient_id, stored.resource
            ):
                opened.append(stored)
        return opened

    async def _included(
        self, session: AsyncSession, ctx: FhirContext, query: SearchQuery, ids: list[str]
    ) -> tuple[list[Stored], bool]:
        """Resources the page's matches point at (``_include``) or are pointed at by (``_revinclude``)."""
        if not ids or not (query.includes or query.revincludes):
            return [], False
        repo = SearchRepository(session)
        seen = {(query.resource_type, i) for i in ids}
        budget = self.settings.max_include
        results: list[Stored] = []

        capped = [False]

        def keep(found: Reach, rows: Any) -> None:
            for stored in self._open(ctx, found, list(rows)):
                if (stored.resource_type, stored.id) in seen:
                    continue
                if len(results) >= budget:
                    capped[0] = True
                    return
                seen.add((stored.resource_type, stored.id))
                results.append(stored)

        for spec in query.includes:
            targets = (spec.target_type,) if spec.target_type else spec.param.target
            pairs = await repo.references_of(
                query.resource_type, ids, spec.param.index_key, targets
            )
            for target_type in sorted({t for t, _ in pairs}):
                found = reach(ctx, target_type)
                if found is not None and len(results) < budget:
                    wanted = [i for t, i in pairs if t == target_type]
                    keep(
                        found,
                        await repo.rows_by_id(
                            target_type, wanted, reach_conditions(self.compiler, found), budget + 1
                        ),
                    )
        for spec in query.revincludes:
            if spec.target_type and spec.target_type != query.resource_type:
                continue
            found = reach(ctx, spec.source_type)
            if found is not None and len(results) < budget:
                keep(
                    found,
                    await repo.referencing(
                        spec.source_type,
                        spec.param.index_key,
                        query.resource_type,
                        ids,
                        reach_conditions(self.compiler, found),
                        budget + 1,
                    ),
                )
        return results, capped[0]

    def _outcome(self, bundle: dict[str, Any], query: SearchQuery) -> None:
        if query.ignored:
            names = ", ".join(sorted(set(query.ignored)))
            self._warn(bundle, f"ignored search parameters (Prefer: handling=lenient): {names}")

    @staticmethod
    def _warn(bundle: dict[str, Any], message: str) -> None:
        outcome = operation_outcome("warning", "not-supported", message)
        entries = bundle.setdefault("entry", [])
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})

    @staticmethod
    def _names(params: list[tuple[str, str]]) -> list[str]:
        return sorted({name[:64] for name, _ in params if name != "_page"})


__all__ = ["IncludeSpec", "SearchService"]
