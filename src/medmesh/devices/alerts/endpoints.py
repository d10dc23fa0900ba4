"""``/v1/alert-rules`` and ``/v1/alerts``: threshold and offline rules, and the alerts they open."""

from __future__ import annotations

from fastapi import APIRouter, Query

from medmesh.devices.alerts.schemas import (
    AlertPage,
    AlertStatus,
    AlertView,
    RuleCreate,
    RuleList,
    RuleUpdate,
    RuleView,
)
from medmesh.devices.alerts.views import alert_view, rule_view
from medmesh.devices.components import Components, Reader, Writer
from medmesh.platform.db import SessionDep
from medmesh.platform.paging import KeysetQuery, next_after

router = APIRouter(tags=["alerts"])
PROBLEM: dict[str, object] = {
    "description": "problem details",
    "content": {"application/problem+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {
    400: PROBLEM,
    401: PROBLEM,
    403: PROBLEM,
    404: PROBLEM,
    409: PROBLEM,
}


@router.post("/v1/alert-rules", status_code=201, summary="add an alert rule", responses=ERRORS)
async def create_rule(
    body: RuleCreate, caller: Writer, components: Components, session: SessionDep
) -> RuleView:
    """A threshold rule opens one alert per device when its condition holds (for
    `for_seconds` of reading time, or `in_a_row` readings) and resolves it at the first reading
    that no longer meets it; an offline rule opens one when an assigned device sends nothing
    for `offline_seconds`, resolved by its next reading. Thresholds are in the metric's stored
    unit (`%`, `/min`, `Cel`, `mm[Hg]`, `mg/dL` ...)."""
    return rule_view(await components.alerts.create_rule(session, caller, body))


@router.get("/v1/alert-rules", summary="the alert rules", responses=ERRORS)
async def list_rules(caller: Reader, components: Components, session: SessionDep) -> RuleList:
    """Every rule, oldest first."""
    return RuleList(data=[rule_view(r) for r in await components.alerts.rules(session)])


@router.get("/v1/alert-rules/{rule_id}", summary="an alert rule", responses=ERRORS)
async def get_rule(
    rule_id: str, caller: Reader, components: Components, session: SessionDep
) -> RuleView:
    """The rule."""
    return rule_view(await components.alerts.rule(session, rule_id))


@router.patch("/v1/alert-rules/{rule_id}", summary="enable or disable a rule", responses=ERRORS)
async def update_rule(
    rule_id: str, body: RuleUpdate, caller: Writer, components: Components, session: SessionDep
) -> RuleView:
    """A disabled rule opens no alerts (its open ones stay until resolved)."""
    return rule_view(await components.alerts.set_enabled(session, caller, rule_id, body.enabled))


@router.get("/v1/alerts", summary="list alerts", responses=ERRORS)
async def list_alerts(
    caller: Reader,
    components: Components,
    session: SessionDep,
    page: KeysetQuery,
    status: AlertStatus | None = Query(default=None),
    patient: str | None = Query(default=None, max_length=200),
    device_id: str | None = Query(default=None, max_length=40),
) -> AlertPage:
    """Alerts in id order (oldest first), filtered by status, patient or device."""
    rows = await components.alerts.page(session, caller, page, status, patient, device_id)
    return AlertPage(
        data=[alert_view(r) for r in rows],
        next_after=next_after(rows, page.limit, lambda row: row.id),
    )


@router.get("/v1/alerts/{alert_id}", summary="an alert", responses=ERRORS)
async def get_alert(
    alert_id: str, caller: Reader, components: Components, session: SessionDep
) -> AlertView:
    """The alert and where it stands."""
    return alert_view(await components.alerts.alert(session, alert_id))


@router.post("/v1/alerts/{alert_id}/acknowledge", summary="acknowledge an alert", responses=ERRORS)
async def acknowledge(
    alert_id: str, caller: Writer, components: Components, session: SessionDep
) -> AlertView:
    """An open alert becomes `acknowledged` (by the caller); 409 otherwise."""
    return alert_view(await components.alerts.acknowledge(session, caller, alert_id))


@router.post("/v1/alerts/{alert_id}/resolve", summary="resolve an alert", responses=ERRORS)
async def resolve(
    alert_id: str, caller: Writer, components: Components, session: SessionDep
) -> AlertView:
    """Resolves an open or acknowledged alert by hand; 409 when it is resolved already."""
    return alert_view(await components.alerts.resolve(session, caller, alert_id))
