"""``Patient/{id}/$everything``: a patient's record as pages of a searchset Bundle.

The pages hold the Patient and every current resource of its compartment (by type,
then id; ``next`` is a keyset cursor, so pages stay right while data changes),
narrowed by ``_type`` and ``_since``, plus the Practitioners, Organizations,
Locations and Medications the page references (``search.mode = include``). Each
resource is shown only if the caller may read it: a patient-bound token reaches
only its own record, and ``user``/``system`` callers lose the types (or categories)
their scopes do not cover.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.bundles.references import reference_holders
from medmesh.phi.bundles.repository import BundleRepository
from medmesh.phi.config import PhiSettings
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.types import SUPPORTED_TYPES
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.resources.stored import Stored, check_id

INCLUDED_TYPES = ("Practitioner", "Organization", "Location", "Medication")
PARAMETERS = ("_count", "_type", "_since", "_cursor")


def _invalid(message: str, parameter: str) -> InvalidResource:
    return InvalidResource(message, issue_code="value", expression=[parameter])


def parse_instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(
            "_since must be a FHIR instant such as 2024-01-31T00:00:00Z", "_since"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def encode_cursor(resource_type: str, resource_id: str) -> str:
    return base64.urlsafe_b64encode(f"{resource_type}/{resource_id}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid("_cursor is not a cursor of this server", "_cursor") from None
    resource_type, _, resource_id = text.partition("/")
    if resource_type not in SUPPORTED_TYPES or not resource_id:
        raise _invalid("_cursor is not a cursor of this server", "_cursor")
    return resource_type, resource_id


def _url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


class EverythingQuery:
    def __init__(self, settings: PhiSettings, resources: ResourceService) -> None:
        self.settings = settings
        self.resources = resources

    def _options(
        self, params: list[tuple[str, str]], lenient: bool
    ) -> tuple[int, list[str] | None, datetime | None, tuple[str, str] | None]:
        count, types, since, after = self.settings.default_count, None, None, None
        for name, value in params:
            if name == "_count":
                if not (value.isascii() and value.isdigit()):
                    raise _invalid("_count must be a whole number", "_count")
                count = max(1, min(int(value), self.settings.max_count))
            elif name == "_type":
                types = [t.strip() for t in value.split(",") if t.strip()]
                if any(t not in SUPPORTED_TYPES for t in types):
                    raise _invalid("_type names an unsupported resource type", "_type")
            elif name == "_since":
                since = parse_instant(value)
            elif name == "_cursor":
                after = decode_cursor(value)
            elif not lenient:
                raise InvalidResource(
                    "$everything supports _count, _type and _since",
                    issue_code="not-supported",
                    expression=[name[:64]],
                )
        return count, types, since, after

    async def run(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        patient_id: str,
        params: list[tuple[str, str]],
        *,
        lenient: bool = False,
    ) -> dict[str, Any]:
        check_id(patient_id)
        count, types, since, after = self._options(params, lenient)
        auditor = self.resources.auditor
        patient = await self.resources.current(session, "Patient", patient_id)
        if not ctx.policy.allows("r", "Patient", patient_id, patient.resource):
            await auditor.record(
                ctx,
                "fhir.everything",
                resource_type="Patient",
                resource_id=patient_id,
                patients=[patient_id],
                outcome="failure",
                reason="forbidden",
            )
            ctx.policy.require("r", "Patient", patient_id, patient.resource)
        repo = BundleRepository(session)
        rows = await repo.compartment_page(
            patient_id, types=types, since=since, after=after, limit=count + 1
        )
        has_next = len(rows) > count
        rows = rows[:count]
        matches: list[Stored] = []
        for row in rows:
            stored = self.resources.open_row(row)
            if ctx.policy.allows("r", stored.resource_type, row.patient_id, stored.resource):
                matches.append(stored)
        included = await self._included(session, ctx, matches)
        entries = [s.search_entry(ctx.base_url, "match") for s in matches] + [
            s.search_entry(ctx.base_url, "include") for s in included
        ]
        await auditor.record(
            ctx,
            "fhir.everything",
            resource_type="Patient",
            resource_id=patient_id,
            patients=[patient_id],
            count=len(matches),
            included=len(included),
        )
        own = [(k, v) for k, v in params if k in PARAMETERS]
        base = f"{ctx.base_url}/Patient/{patient_id}/$everything"
        links = [{"relation": "self", "url": _url(base, own)}]
        if has_next:
            cursor = encode_cursor(rows[-1].resource_type, rows[-1].id)
            following = [(k, v) for k, v in own if k != "_cursor"] + [("_cursor", cursor)]
            links.append({"relation": "next", "url": _url(base, following)})
        return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}

    async def _included(
        self, session: AsyncSession, ctx: FhirContext, matches: list[Stored]
    ) -> list[Stored]:
        """The page's referenced Practitioners, Organizations, Locations and Medications the caller may read."""
        keys: dict[tuple[str, str], None] = {}
        for stored in matches:
            for holder in reference_holders(stored.resource):
                resource_type, _, resource_id = str(holder["reference"]).partition("/")
                if resource_type in INCLUDED_TYPES and resource_id and "/" not in resource_id:
                    keys[(resource_type, resource_id)] = None
        rows = await BundleRepository(session).current_many(list(keys))
        found = [self.resources.open_row(row) for row in rows]
        return [s for s in found if ctx.policy.allows("r", s.resource_type, None, s.resource)]
