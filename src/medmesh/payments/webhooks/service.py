"""Webhook endpoints (account-wide: refused to patient-bound tokens): create (the answer carries
the ``whsec_`` secret once), retrieve, update, delete, list."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.errors import ResourceMissing
from medmesh.payments.models import WebhookEndpointRow
from medmesh.payments.objects import list_object, new_id
from medmesh.payments.paging import ListPage
from medmesh.payments.params import merge_metadata
from medmesh.payments.scoping import Caller
from medmesh.payments.webhooks.repository import WebhookEndpointRepository
from medmesh.payments.webhooks.schemas import (
    DEFAULT_OVERLAP,
    delivery_object,
    webhook_endpoint_object,
)
from medmesh.platform.db import utcnow
from medmesh.platform.errors import Forbidden


def _account_wide(caller: Caller) -> None:
    if caller.patient_ref is not None:
        raise Forbidden(
            "webhook endpoints are account-wide; a patient-bound token cannot manage them"
        )


class WebhookEndpointService:
    async def create(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        _account_wide(caller)
        row = WebhookEndpointRow(
            id=new_id("we"),
            url=params["url"],
            enabled_events=params["enabled_events"],
            status="enabled",
            description=params.get("description"),
            metadata_={k: v for k, v in (params.get("metadata") or {}).items() if v != ""},
            secret="whsec_" + secrets.token_urlsafe(32),
            created=utcnow(),
        )
        await WebhookEndpointRepository(session).add(row)
        return webhook_endpoint_object(row, with_secret=True)

    async def _row(
        self, session: AsyncSession, caller: Caller, endpoint_id: str
    ) -> WebhookEndpointRow:
        _account_wide(caller)
        row = await WebhookEndpointRepository(session).get(endpoint_id)
        if row is None:
            raise ResourceMissing(f"No such webhook endpoint: '{endpoint_id}'", param="id")
        return row

    async def retrieve(
        self, session: AsyncSession, caller: Caller, endpoint_id: str
    ) -> dict[str, Any]:
        return webhook_endpoint_object(await self._row(session, caller, endpoint_id))

    async def update(
        self, session: AsyncSession, caller: Caller, endpoint_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self._row(session, caller, endpoint_id)
        if "url" in params:
            row.url = params["url"]
        if "enabled_events" in params:
            row.enabled_events = params["enabled_events"]
        if "description" in params:
            row.description = params["description"] or None
        if "metadata" in params:
            row.metadata_ = merge_metadata(row.metadata_, params["metadata"])
        if "disabled" in params:
            row.status = "disabled" if params["disabled"] else "enabled"
        await session.flush()
        return webhook_endpoint_object(row)

    async def roll_secret(
        self, session: AsyncSession, caller: Caller, endpoint_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """A new secret (in this answer only); the old one keeps signing, next to it, for
        ``expires_in`` seconds (default a day) so receivers can switch without losing events."""
        row = await self._row(session, caller, endpoint_id)
        overlap = params.get("expires_in", DEFAULT_OVERLAP)
        row.previous_secret = row.secret if overlap > 0 else None
        row.previous_secret_expires = utcnow() + timedelta(seconds=overlap) if overlap > 0 else None
        row.secret = "whsec_" + secrets.token_urlsafe(32)
        await session.flush()
        return webhook_endpoint_object(row, with_secret=True)

    async def deliveries(
        self, session: AsyncSession, caller: Caller, endpoint_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The endpoint's deliveries, newest first: attempts, last error, status."""
        row = await self._row(session, caller, endpoint_id)
        limit = params.get("limit", 10)
        found = await WebhookEndpointRepository(session).deliveries(row.id, limit + 1)
        data = [delivery_object(m) for m in found[:limit]]
        url = f"/v1/webhook_endpoints/{row.id}/deliveries"
        return list_object(url, data, len(found) > limit)

    async def delete(
        self, session: AsyncSession, caller: Caller, endpoint_id: str
    ) -> dict[str, Any]:
        row = await self._row(session, caller, endpoint_id)
        await WebhookEndpointRepository(session).delete(row)
        return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

    async def list(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        _account_wide(caller)
        page = ListPage.of(params)
        return page.listed(
            "/v1/webhook_endpoints",
            await WebhookEndpointRepository(session).page(page),
            webhook_endpoint_object,
        )
