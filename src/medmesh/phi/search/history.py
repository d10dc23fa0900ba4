"""History Bundles: every version, newest first, of the system, a type or one resource.

Narrowed like search: a version is listed only within the caller's reach into its type (a
patient-bound token sees its own compartment's versions), then checked against the policy
once decrypted. The history of one resource is refused (403) exactly as its read is, so that
it never answers an empty Bundle where read answers 403. Pages follow a keyset cursor over
``(lastUpdated, type, id, version)``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.access.policy import AccessDenied
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.errors import InvalidResource, ResourceNotFound
from medmesh.phi.fhir.types import SUPPORTED_TYPES, fhir_instant
from medmesh.phi.models import ResourceVersionRow
from medmesh.phi.resources.repository import ResourceRepository
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.resources.stored import check_id, check_type
from medmesh.phi.search.access import Reach, reach
from medmesh.phi.search.dates import date_range
from medmesh.phi.search.filters import version_visibility
from medmesh.phi.search.paging import decode_cursor, encode_cursor, page_url
from medmesh.platform.db import utcnow

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}


class HistoryReader:
    def __init__(
        self, resources: ResourceService, auditor: PhiAuditor, default_count: int, max_count: int
    ) -> None:
        self.resources = resources
        self.auditor = auditor
        self.default_count = default_count
        self.max_count = max_count

    async def history(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource_type: str | None,
        resource_id: str | None,
        params: list[tuple[str, str]],
    ) -> dict[str, Any]:
        if resource_type is not None:
            check_type(resource_type)
        if resource_id is not None:
            check_id(resource_id)
        count, since, cursor = self._params(params)
        repo = ResourceRepository(session)
        if resource_type is not None and resource_id is not None:
            await self._require_read(ctx, repo, resource_type, resource_id)
        reaches = self._reaches(ctx, resource_type)
        if not reaches:
            await self.auditor.record(
                ctx,
                "fhir.history",
                resource_type=resource_type,
                resource_id=resource_id,
                outcome="failure",
                reason="forbidden",
            )
            raise AccessDenied("the access token does not allow reading history")
        before = None
        if cursor is not None:
            values, _ = decode_cursor(cursor, 4)
            if not (isinstance(values[0], datetime) and isinstance(values[3], int)):
                raise InvalidResource("the page cursor is not valid", issue_code="value")
            before = (values[0], str(values[1]), str(values[2]), values[3])
        groups: dict[tuple[tuple[str, ...] | None, frozenset[str]], list[str]] = defaultdict(list)
        for found in reaches.values():
            groups[(found.visible, found.excluded)].append(found.resource_type)
        rows = await repo.history(
            resource_type=resource_type,
            resource_id=resource_id,
            since=since,
            before=before,
            limit=count + 1,
            visible=version_visibility(
                [(types, visible, excluded) for (visible, excluded), types in groups.items()]
            ),
        )
        more = len(rows) > count
        rows = rows[:count]
        shown = [(row, self._entry(ctx, reaches, row)) for row in rows]
        entries = [entry for _, entry in shown if entry is not None]
        path = "/".join(p for p in (resource_type, resource_id, "_history") if p)
        echo = [(n, v) for n, v in params if n != "_page"]
        links = [{"relation": "self", "url": page_url(ctx.base_url, path, echo, cursor)}]
        if more and rows:
            last = rows[-1]
            position = encode_cursor([last.last_updated, last.resource_type, last.id, last.version])
            links.append({"relation": "next", "url": page_url(ctx.base_url, path, echo, position)})
        await self.auditor.record(
            ctx,
            "fhir.history",
            resource_type=resource_type,
            resource_id=resource_id,
            patients=[row.patient_id for row, entry in shown if entry is not None],
            count=len(entries),
        )
        return {
            "resourceType": "Bundle",
            "id": uuid.uuid4().hex,
            "meta": {"lastUpdated": fhir_instant(utcnow())},
            "type": "history",
            "link": links,
            "entry": entries,
        }

    async def _require_read(
        self, ctx: FhirContext, repo: ResourceRepository, resource_type: str, resource_id: str
    ) -> None:
        """404 for an unknown resource, 403 (read's OperationOutcome) for one the caller may not read.

        A deleted resource is judged by its last version with a body (what a read saw last).
        """
        row = await repo.get(resource_type, resource_id)
        if row is None:
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known")
        patient_id: str | None = row.patient_id
        resource: dict[str, Any] | None = None
        if not row.deleted:
            resource = self.resources.open_row(row).resource
        elif row.version > 1:
            last = await repo.get_version(resource_type, resource_id, row.version - 1)
            if last is not None and last.body is not None:
                patient_id = last.patient_id
                resource = self.resources.open_row(last).resource
        if ctx.policy.allows("r", resource_type, patient_id, resource):
            return
        await self.auditor.record(
            ctx,
            "fhir.history",
            resource_type=resource_type,
            resource_id=resource_id,
            patients=[patient_id],
            outcome="failure",
            reason="forbidden",
        )
        ctx.policy.require("r", resource_type, patient_id, resource)

    def _params(self, params: Sequence[tuple[str, str]]) -> tuple[int, datetime | None, str | None]:
        count, since, cursor = self.default_count, None, None
        for name, value in params:
            if name == "_count":
                if not (value.isascii() and value.isdigit()):
                    raise InvalidResource(
                        "_count must be a non-negative integer", issue_code="value"
                    )
                count = max(1, min(int(value), self.max_count))
            elif name == "_since":
                span = date_range(value)
                if span is None:
                    raise InvalidResource("_since must be a FHIR instant", issue_code="value")
                since = span[0]
            elif name == "_page":
                cursor = value
        return count, since, cursor

    @staticmethod
    def _reaches(ctx: FhirContext, resource_type: str | None) -> dict[str, Reach]:
        types = [resource_type] if resource_type is not None else sorted(SUPPORTED_TYPES)
        found = {t: reach(ctx, t, "rs") for t in types}
        return {t: r for t, r in found.items() if r is not None}

    def _entry(
        self, ctx: FhirContext, reaches: dict[str, Reach], row: ResourceVersionRow
    ) -> dict[str, Any] | None:
        found = reaches.get(row.resource_type)
        if found is None:
            return None
        resource = None if row.body is None else self.resources.open_row(row).resource
        if not ctx.policy.allows(found.permission, row.resource_type, row.patient_id, resource):
            return None
        entry: dict[str, Any] = {"fullUrl": f"{ctx.base_url}/{row.resource_type}/{row.id}"}
        if resource is not None:
            entry["resource"] = resource
        method = row.method if row.method in _STATUS else "PUT"
        url = row.resource_type if method == "POST" else f"{row.resource_type}/{row.id}"
        status = _STATUS[method] if row.version > 1 or method != "PUT" else "201 Created"
        entry["request"] = {"method": method, "url": url}
        entry["response"] = {
            "status": status,
            "etag": f'W/"{row.version}"',
            "lastModified": fhir_instant(row.last_updated),
        }
        return entry
