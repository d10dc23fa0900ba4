"""What phi serves is valid R4: reads, searches, history, ``$everything``, ``$validate``,
errors and AuditEvents, each checked with the R4 validator."""

from __future__ import annotations

from medmesh.phi.fhir.r4 import validate
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import observation, patient


async def test_every_kind_of_answer_is_valid_r4(phi: PhiHarness) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    stored = await phi.create(observation(owner))
    await phi.http.put(
        f"/fhir/Observation/{stored['id']}",
        json={**stored, "status": "amended"},
        headers=phi.headers(),
    )
    audit_reader = phi.headers("audit:read system/*.rs")
    answers = {
        "read": await phi.http.get(f"/fhir/Patient/{owner}", headers=phi.headers()),
        "vread": await phi.http.get(
            f"/fhir/Observation/{stored['id']}/_history/1", headers=phi.headers()
        ),
        "search": await phi.http.get(
            "/fhir/Observation",
            params={"patient": owner, "_include": "Observation:subject", "_total": "accurate"},
            headers=phi.headers(),
        ),
        "history": await phi.http.get(
            f"/fhir/Observation/{stored['id']}/_history", headers=phi.headers()
        ),
        "system history": await phi.http.get("/fhir/_history", headers=phi.headers()),
        "everything": await phi.http.get(
            f"/fhir/Patient/{owner}/$everything", headers=phi.headers()
        ),
        "validate": await phi.http.post(
            "/fhir/Observation/$validate",
            json={**observation(owner), "status": "bogus-code"},
            headers=phi.headers(),
        ),
        "not found": await phi.http.get("/fhir/Observation/nothere", headers=phi.headers()),
        "refused": await phi.http.post(
            "/fhir/Patient", json={"resourceType": "Patient", "active": None}, headers=phi.headers()
        ),
        "audit events": await phi.http.get("/fhir/AuditEvent", headers=audit_reader),
        "metadata": await phi.http.get("/fhir/metadata"),
    }
    refusals = {"not found": 404, "refused": 400}
    for name, response in answers.items():
        assert response.status_code == refusals.get(name, 200), (name, response.text[:300])
        assert response.headers["content-type"].startswith("application/fhir+json"), name
        assert validate(response.json()) == [], (name, response.text[:500])
