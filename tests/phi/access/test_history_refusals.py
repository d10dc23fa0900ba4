"""History and ``$everything`` of one resource answer a refusal exactly as its read does
(issue #13, finding 7): never an empty Bundle where read answers 403."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, consent, observation, patient


async def _refusals(phi: PhiHarness, path: str, headers: dict[str, str]) -> list[Any]:
    read = await phi.http.get(f"/fhir/{path}", headers=headers)
    history = await phi.http.get(f"/fhir/{path}/_history", headers=headers)
    assert (read.status_code, history.status_code) == (403, 403), path
    return [read.json(), history.json()]


async def test_history_of_a_resource_is_refused_as_its_read(phi: PhiHarness) -> None:
    a = (await phi.create(patient("Alpha")))["id"]
    b = (await phi.create(patient("Bravo")))["id"]
    b_obs = (await phi.create(observation(b)))["id"]
    token = phi.headers("patient/*.rs", patient=a)

    patient_read, history = await _refusals(phi, f"Patient/{b}", token)
    assert (
        patient_read
        == history
        == {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "forbidden",
                    "diagnostics": "the access token does not allow read of this Patient",
                }
            ],
        }
    )
    read, history = await _refusals(phi, f"Observation/{b_obs}", token)
    assert read == history
    assert history["issue"][0]["diagnostics"] == (
        "the access token does not allow read of this Observation"
    )
    everything = await phi.http.get(f"/fhir/Patient/{b}/$everything", headers=token)
    assert everything.status_code == 403
    assert everything.json() == patient_read
    last = (await audit_records(phi.app, action="fhir.history"))[-1]
    assert (last.outcome, last.resource_type, last.patient_ids) == (
        "failure",
        "Observation",
        [b],
    )

    # A deleted resource stays refused (judged by its last version), and the caller's own
    # history, the type's and the system's list only the caller's compartment.
    deleted = await phi.http.delete(f"/fhir/Observation/{b_obs}", headers=phi.headers())
    assert deleted.status_code == 204
    gone = await phi.http.get(f"/fhir/Observation/{b_obs}/_history", headers=token)
    assert gone.status_code == 403
    assert gone.json() == history
    own = await phi.http.get(f"/fhir/Patient/{a}/_history", headers=token)
    assert own.status_code == 200
    assert [e["resource"]["id"] for e in own.json()["entry"]] == [a]
    for path in ("Patient/_history", "_history"):
        listed = await phi.http.get(f"/fhir/{path}", headers=token)
        assert listed.status_code == 200, path
        assert {e["fullUrl"].rsplit("/", 1)[1] for e in listed.json()["entry"]} == {a}, path


async def test_history_is_refused_as_read_under_consent_and_scopes(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private")))["id"]
    await phi.create(consent(denied))
    clinician = phi.headers("user/*.rs", roles=["clinician"])
    read, history = await _refusals(phi, f"Patient/{denied}", clinician)
    assert read == history
    # a token without any Patient scope: the same message as read, not "reading history"
    observations_only = phi.headers("user/Observation.rs")
    read, history = await _refusals(phi, f"Patient/{denied}", observations_only)
    assert read == history
    assert history["issue"][0]["diagnostics"] == (
        "the access token does not allow read of this Patient"
    )
    unknown = await phi.http.get("/fhir/Patient/nobody/_history", headers=observations_only)
    assert unknown.status_code == 404
