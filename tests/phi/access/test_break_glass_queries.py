"""Break-glass in queries without a per-row check: a count that needed it is flagged and
audited; a chain never breaks the glass (nothing could flag a match that only it made)."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, consent, observation, patient

CLINICIAN: dict[str, Any] = {"scope": "user/*.rs", "roles": ["clinician"], "sub": "dr-who"}
REASON = "unconscious patient in the emergency department"


async def _get(phi: PhiHarness, query: str, reason: str | None) -> Any:
    headers = phi.headers(**CLINICIAN)
    if reason:
        headers["X-Break-Glass-Reason"] = reason
    response = await phi.http.get(f"/fhir/{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response


async def test_a_count_that_breaks_the_glass_is_flagged(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private")))["id"]
    await phi.create(observation(denied))
    await phi.create(consent(denied))
    other = (await phi.create(patient("Open")))["id"]
    await phi.create(observation(other))

    for query in ("Observation?_summary=count", "Observation?_count=0", "Patient?_total=accurate"):
        plain = await _get(phi, query, None)
        assert plain.json()["total"] == 1, query
        assert "X-Break-Glass-Used" not in plain.headers, query
        broken = await _get(phi, query, REASON)
        assert broken.json()["total"] == 2, query
        assert broken.headers["X-Break-Glass-Used"] == "true", query
        record = (await audit_records(phi.app, actor="dr-who", action="fhir.search"))[-1]
        assert (record.purpose, record.details["break_glass"]) == (REASON, True), query

    # A reason sent "just in case" is not flagged when the count did not need it.
    unneeded = await _get(phi, f"Observation?patient={other}&_summary=count", REASON)
    assert unneeded.json()["total"] == 1
    assert "X-Break-Glass-Used" not in unneeded.headers
    record = (await audit_records(phi.app, actor="dr-who", action="fhir.search"))[-1]
    assert "break_glass" not in record.details


async def test_a_chain_never_breaks_the_glass(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private")))["id"]
    await phi.create(consent(denied))
    other = (await phi.create(patient("Open")))["id"]
    linked = await phi.create(
        {**observation(other), "performer": [{"reference": f"Patient/{denied}"}]}
    )
    query = "Observation?performer:Patient.name=Private"
    for reason in (None, REASON):
        response = await _get(phi, query, reason)
        assert response.json()["entry"] == [], reason
        assert response.json()["total"] == 0, reason
        assert "X-Break-Glass-Used" not in response.headers, reason
    system = await phi.http.get(f"/fhir/{query}", headers=phi.headers("system/*.rs"))
    assert [e["resource"]["id"] for e in system.json()["entry"]] == [linked["id"]]
