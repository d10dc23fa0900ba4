"""``/fhir/AuditEvent``: the audit trail as FHIR AuditEvents, searchable and paged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from medmesh.phi.audit_events.params import BadSearch, date_range
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, consent, observation, patient

AUDITOR: dict[str, Any] = {"scope": "audit:read", "roles": ["auditor"], "sub": "auditor-1"}


async def _events(phi: PhiHarness, **params: Any) -> list[dict[str, Any]]:
    response = await phi.http.get("/fhir/AuditEvent", params=params, headers=phi.headers(**AUDITOR))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle.get("entry", [])]


async def _activity(phi: PhiHarness) -> tuple[str, str, str]:
    """Two patients; the first is created, read by a clinician and refused to a patient token."""
    first = (await phi.create(patient("Alpha")))["id"]
    second = (await phi.create(patient("Beta")))["id"]
    obs = (await phi.create(observation(first)))["id"]
    await phi.http.get(
        f"/fhir/Observation/{obs}",
        headers=phi.headers("user/*.rs", sub="dr-a", roles=["clinician"]),
    )
    await phi.http.get(
        f"/fhir/Observation/{obs}", headers=phi.headers("patient/*.rs", patient=second, sub="pat-b")
    )
    return first, second, obs


async def test_search_by_patient_renders_valid_audit_events(phi: PhiHarness) -> None:
    first, second, obs = await _activity(phi)
    events = await _events(phi, patient=f"Patient/{first}")
    assert [e["subtype"][0]["code"] for e in events] == ["create", "create", "read", "read"]
    for event in events:
        AuditEvent.model_validate(event)
        assert event["type"]["code"] == "rest"
        assert event["source"]["observer"]["display"] == "medmesh-phi"
        assert {"reference": f"Patient/{first}"} in [
            entity.get("what") for entity in event["entity"]
        ]
    read = events[2]
    assert read["action"] == "R"
    assert read["outcome"] == "0"
    assert read["subtype"][1] == {"system": "urn:medmesh:audit-action", "code": "fhir.read"}
    requestor = read["agent"][0]
    assert requestor["requestor"] is True
    assert requestor["who"]["identifier"]["value"] == "dr-a"
    assert requestor["network"]["address"] == "198.51.100.20"
    assert read["agent"][1]["who"]["identifier"]["value"] == "test-client"
    assert {"reference": f"Observation/{obs}"} in [entity.get("what") for entity in read["entity"]]
    refused = events[3]
    assert refused["outcome"] == "4"
    assert refused["outcomeDesc"] == "forbidden"
    assert refused["agent"][0]["who"]["identifier"]["value"] == "pat-b"
    # The bare id works as well as the reference.
    assert len(await _events(phi, patient=first)) == 4
    assert [e["subtype"][0]["code"] for e in await _events(phi, patient=second)] == ["create"]


async def test_search_by_agent_action_and_subtype(phi: PhiHarness) -> None:
    first, _, _ = await _activity(phi)
    assert [e["action"] for e in await _events(phi, agent="dr-a")] == ["R"]
    creates = await _events(phi, action="C")
    assert len(creates) == 3
    assert {e["action"] for e in creates} == {"C"}
    assert len(await _events(phi, action="C,R")) == 5
    assert len(await _events(phi, subtype="fhir.read")) == 2
    assert len(await _events(phi, subtype="read")) == 2
    assert len(await _events(phi, subtype="http://hl7.org/fhir/restful-interaction|create")) == 3
    assert await _events(phi, action="D") == []
    assert await _events(phi, action="R", subtype="create") == []
    await phi.http.delete(f"/fhir/Patient/{first}", headers=phi.headers())
    [deleted] = await _events(phi, action="D")
    assert deleted["subtype"][0]["code"] == "delete"


async def test_search_by_date(phi: PhiHarness) -> None:
    await _activity(phi)
    today = datetime.now(UTC).date().isoformat()
    assert len(await _events(phi, date=today)) == 5
    assert len(await _events(phi, date=f"ge{today}")) == 5
    assert await _events(phi, date=f"lt{today}") == []
    assert await _events(phi, date="le2000-01-01") == []
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = await phi.http.get(
        "/fhir/AuditEvent",
        params=[("date", f"gt{hour_ago}"), ("date", f"lt{in_an_hour}")],
        headers=phi.headers(**AUDITOR),
    )
    assert len(response.json()["entry"]) == 5
    assert await _events(phi, date=f"gt{in_an_hour}") == []


async def test_paging_follows_next_links(phi: PhiHarness) -> None:
    await _activity(phi)
    seen: list[str] = []
    url: str | None = "/fhir/AuditEvent?_count=2"
    while url is not None:
        response = await phi.http.get(url, headers=phi.headers(**AUDITOR))
        bundle = response.json()
        seen += [entry["resource"]["id"] for entry in bundle.get("entry", [])]
        assert bundle["link"][0]["relation"] == "self"
        nexts = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nexts[0] if nexts else None
    assert seen == [str(seq) for seq in range(1, 6)]


async def test_read_one_audit_event(phi: PhiHarness) -> None:
    await _activity(phi)
    response = await phi.http.get("/fhir/AuditEvent/3", headers=phi.headers(**AUDITOR))
    assert response.status_code == 200
    AuditEvent.model_validate(response.json())
    assert response.json()["id"] == "3"
    assert (
        await phi.http.get("/fhir/AuditEvent/999", headers=phi.headers(**AUDITOR))
    ).status_code == 404
    assert (
        await phi.http.get("/fhir/AuditEvent/abc", headers=phi.headers(**AUDITOR))
    ).status_code == 404


async def test_break_glass_shows_as_purpose_of_use(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private")))["id"]
    await phi.create(consent(denied))
    headers = {
        **phi.headers("user/*.rs", roles=["clinician"], sub="dr-b"),
        "X-Break-Glass-Reason": "cardiac arrest",
    }
    assert (await phi.http.get(f"/fhir/Patient/{denied}", headers=headers)).status_code == 200
    [event] = await _events(phi, agent="dr-b")
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "BTG"
    assert event["purposeOfEvent"][0]["text"] == "cardiac arrest"
    assert event["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "BTG"


async def test_needs_audit_read_and_is_not_itself_audited(phi: PhiHarness) -> None:
    await phi.create(patient())
    before = len(await audit_records(phi.app))
    refused = await phi.http.get("/fhir/AuditEvent", headers=phi.headers("system/*.cruds"))
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert (await phi.http.get("/fhir/AuditEvent")).status_code == 401
    await _events(phi)
    assert len(await audit_records(phi.app)) == before


async def test_bad_parameters(phi: PhiHarness) -> None:
    for params in (
        {"date": "yesterday"},
        {"date": "ne2024-01-01"},
        {"action": "X"},
        {"_count": "many"},
        {"name": "Smith"},
    ):
        response = await phi.http.get(
            "/fhir/AuditEvent", params=params, headers=phi.headers(**AUDITOR)
        )
        assert response.status_code == 400, params
        assert response.json()["resourceType"] == "OperationOutcome"
    lenient = await phi.http.get(
        "/fhir/AuditEvent",
        params={"name": "Smith"},
        headers={**phi.headers(**AUDITOR), "Prefer": "handling=lenient"},
    )
    assert lenient.status_code == 200


def test_date_ranges_follow_precision() -> None:
    assert date_range("2024") == (
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert date_range("2024-12") == (
        datetime(2024, 12, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert date_range("2024-02-28")[1] == datetime(2024, 2, 29, tzinfo=UTC)
    start, end = date_range("2024-05-01T10:00:00+02:00")
    assert start == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert end - start == timedelta(seconds=1)
    with pytest.raises(BadSearch):
        date_range("2024-02-30")


async def test_digits_that_are_not_ascii_are_refused_not_crashed_on(phi: PhiHarness) -> None:
    # "³" is a digit to str.isdigit() but not to int() (found by schemathesis).
    await _activity(phi)
    headers = phi.headers(**AUDITOR)
    assert (await phi.http.get("/fhir/AuditEvent/%C2%B3", headers=headers)).status_code == 404
    assert (
        await phi.http.get("/fhir/AuditEvent?_count=%C2%B3", headers=headers)
    ).status_code == 400
    reader = phi.headers()
    assert (await phi.http.get("/fhir/Patient?_count=%C2%B2", headers=reader)).status_code == 400
    history = await phi.http.get("/fhir/Patient/x/_history/%C2%B3", headers=reader)
    assert history.status_code == 404
