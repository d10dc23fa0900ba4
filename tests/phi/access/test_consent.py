"""A Consent that denies access blocks ``user/`` scopes; ``system/`` and break-glass pass."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from medmesh.phi.access.consent import denies_whole_record
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, consent, observation, patient

CLINICIAN: dict[str, Any] = {"scope": "user/*.cruds", "roles": ["clinician"], "sub": "dr-who"}
REASON = "unconscious patient in the emergency department"


async def _denied_patient(phi: PhiHarness) -> tuple[str, str]:
    denied = (await phi.create(patient("Private")))["id"]
    obs = (await phi.create(observation(denied)))["id"]
    await phi.create(consent(denied))
    return denied, obs


async def test_consent_denial_blocks_user_scopes_but_not_system(phi: PhiHarness) -> None:
    denied, obs = await _denied_patient(phi)
    other = (await phi.create(patient("Open")))["id"]
    clinician = phi.headers(**CLINICIAN)

    for url in (
        f"/fhir/Patient/{denied}",
        f"/fhir/Observation/{obs}",
        f"/fhir/Observation/{obs}/_history/1",
    ):
        refused = await phi.http.get(url, headers=clinician)
        assert refused.status_code == 403, url
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert "X-Break-Glass-Used" not in refused.headers
    assert (await phi.http.get(f"/fhir/Patient/{other}", headers=clinician)).status_code == 200
    refused_write = await phi.http.post(
        "/fhir/Observation", json=observation(denied), headers=clinician
    )
    assert refused_write.status_code == 403

    system = phi.headers("system/*.rs", sub="backend", client_id="backend")
    assert (await phi.http.get(f"/fhir/Observation/{obs}", headers=system)).status_code == 200
    # The patient themself still sees their own record.
    own = phi.headers("patient/*.rs", patient=denied, roles=["patient"])
    assert (await phi.http.get(f"/fhir/Observation/{obs}", headers=own)).status_code == 200


async def test_consent_denial_filters_user_searches(phi: PhiHarness) -> None:
    denied, obs = await _denied_patient(phi)
    other = (await phi.create(patient("Open")))["id"]
    visible = (await phi.create(observation(other)))["id"]
    found = await phi.http.get("/fhir/Observation", headers=phi.headers(**CLINICIAN))
    assert found.status_code == 200
    ids = {e["resource"]["id"] for e in found.json().get("entry", [])}
    assert visible in ids
    assert obs not in ids
    by_patient = await phi.http.get(
        "/fhir/Observation", params={"patient": denied}, headers=phi.headers(**CLINICIAN)
    )
    assert by_patient.status_code == 200
    assert obs not in {e["resource"]["id"] for e in by_patient.json().get("entry", [])}


async def test_break_glass_is_allowed_flagged_and_audited(phi: PhiHarness) -> None:
    denied, obs = await _denied_patient(phi)
    headers = {**phi.headers(**CLINICIAN), "X-Break-Glass-Reason": REASON}
    response = await phi.http.get(f"/fhir/Observation/{obs}", headers=headers)
    assert response.status_code == 200
    assert response.headers["X-Break-Glass-Used"] == "true"

    [record] = await audit_records(phi.app, actor="dr-who", action="fhir.read")
    assert record.outcome == "success"
    assert record.purpose == REASON
    assert record.details["break_glass"] is True
    assert record.patient_ids == [denied]


async def test_break_glass_needs_a_clinician_a_user_scope_and_a_read(phi: PhiHarness) -> None:
    denied, obs = await _denied_patient(phi)
    url = f"/fhir/Observation/{obs}"
    billing = {**phi.headers("user/*.rs", roles=["billing"]), "X-Break-Glass-Reason": REASON}
    assert (await phi.http.get(url, headers=billing)).status_code == 403
    no_scope = {**phi.headers("openid", roles=["clinician"]), "X-Break-Glass-Reason": REASON}
    assert (await phi.http.get(url, headers=no_scope)).status_code == 403
    # Break-glass never writes.
    write = {**phi.headers(**CLINICIAN), "X-Break-Glass-Reason": REASON}
    assert (
        await phi.http.post("/fhir/Observation", json=observation(denied), headers=write)
    ).status_code == 403
    # A patient token cannot break into another compartment.
    other = (await phi.create(patient("Other")))["id"]
    patient_glass = {
        **phi.headers("patient/*.rs", patient=other, roles=["clinician"]),
        "X-Break-Glass-Reason": REASON,
    }
    assert (await phi.http.get(url, headers=patient_glass)).status_code == 403


async def test_a_reason_without_need_is_not_flagged(phi: PhiHarness) -> None:
    open_patient = (await phi.create(patient("Open")))["id"]
    headers = {**phi.headers(**CLINICIAN), "X-Break-Glass-Reason": REASON}
    response = await phi.http.get(f"/fhir/Patient/{open_patient}", headers=headers)
    assert response.status_code == 200
    assert "X-Break-Glass-Used" not in response.headers
    [record] = await audit_records(phi.app, actor="dr-who", action="fhir.read")
    assert record.purpose is None
    assert "break_glass" not in record.details


async def test_revoking_the_consent_restores_access(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private")))["id"]
    granted = await phi.create(consent(denied))
    url = f"/fhir/Patient/{denied}"
    clinician = phi.headers(**CLINICIAN)
    assert (await phi.http.get(url, headers=clinician)).status_code == 403
    inactive = {**granted, "status": "inactive"}
    assert (
        await phi.http.put(f"/fhir/Consent/{granted['id']}", json=inactive, headers=phi.headers())
    ).status_code == 200
    assert (await phi.http.get(url, headers=clinician)).status_code == 200
    await phi.http.put(f"/fhir/Consent/{granted['id']}", json=granted, headers=phi.headers())
    assert (await phi.http.get(url, headers=clinician)).status_code == 403
    assert (
        await phi.http.delete(f"/fhir/Consent/{granted['id']}", headers=phi.headers())
    ).status_code == 204
    assert (await phi.http.get(url, headers=clinician)).status_code == 200


async def test_narrowed_or_permitting_consents_do_not_deny(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private")))["id"]
    await phi.create(consent(denied, "permit"))
    await phi.create(
        consent(
            denied,
            "deny",
            actor=[
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "PRCP",
                            }
                        ]
                    },
                    "reference": {"reference": "Practitioner/dr-no"},
                }
            ],
        )
    )
    assert (
        await phi.http.get(f"/fhir/Patient/{denied}", headers=phi.headers(**CLINICIAN))
    ).status_code == 200


def test_denies_whole_record_rules() -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    base = consent("p1")
    assert denies_whole_record(base, now)
    assert not denies_whole_record({**base, "status": "inactive"}, now)
    assert not denies_whole_record({**base, "status": "proposed"}, now)
    assert not denies_whole_record(consent("p1", "permit"), now)
    by_class: dict[str, Any] = {"class": [{"code": "Observation"}]}
    assert not denies_whole_record(consent("p1", **by_class), now)
    assert not denies_whole_record(consent("p1", provision=[{"type": "permit"}]), now)
    assert denies_whole_record(
        consent("p1", period={"start": "2024-01-01", "end": "2024-12-31"}), now
    )
    assert not denies_whole_record(consent("p1", period={"start": "2025-01-01"}), now)
    assert not denies_whole_record(consent("p1", period={"end": "2024-05-31T23:59:59Z"}), now)
    assert not denies_whole_record({**base, "provision": None}, now)


async def test_break_glass_search_is_flagged_only_when_it_returns_denied_data(
    phi: PhiHarness,
) -> None:
    denied, obs = await _denied_patient(phi)
    other = (await phi.create(patient("Open")))["id"]
    visible = (await phi.create(observation(other)))["id"]
    headers = {**phi.headers(**CLINICIAN), "X-Break-Glass-Reason": REASON}

    open_search = await phi.http.get(
        "/fhir/Observation", params={"patient": other}, headers=headers
    )
    assert {e["resource"]["id"] for e in open_search.json()["entry"]} == {visible}
    assert "X-Break-Glass-Used" not in open_search.headers

    glass_search = await phi.http.get(
        "/fhir/Observation", params={"patient": denied}, headers=headers
    )
    assert {e["resource"]["id"] for e in glass_search.json()["entry"]} == {obs}
    assert glass_search.headers["X-Break-Glass-Used"] == "true"
    searches = await audit_records(phi.app, actor="dr-who", action="fhir.search")
    assert [r.purpose for r in searches] == [None, REASON]
    assert searches[1].details["break_glass"] is True
