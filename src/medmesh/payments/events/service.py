"""Events are account-wide (they carry every customer's objects): a patient-bound caller is
refused them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.errors import ResourceMissing
from medmesh.payments.events.repository import EventRepository
from medmesh.payments.events.schemas import event_object
from medmesh.payments.paging import ListPage
from medmesh.payments.scoping import Caller
from medmesh.platform.errors import Forbidden


def _account_wide(caller: Caller) -> None:
    if caller.patient_ref is not None:
        raise Forbidden("events are account-wide; a patient-bound token cannot read them")


class EventService:
    async def retrieve(
        self, session: AsyncSession, caller: Caller, event_id: str
    ) -> dict[str, Any]:
        _account_wide(caller)
        row = await EventRepository(session).get(event_id)
        if row is None:
            raise ResourceMissing(f"No such event: '{event_id}'", param="id")
        return event_object(row)

    async def list(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        _account_wide(caller)
        page = ListPage.of(params)
        fetched = await EventRepository(session).page(page, params.get("type"))
        return page.listed("/v1/events", fetched, event_object)
