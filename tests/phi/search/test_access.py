"""A search only returns what the caller may see: compartments, Consent, scopes; audited."""

from __future__ import annotations

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records
from tests.phi.search.support import ids, observation, patient, search, typed_ids


async def test_patient_token_sees_only_its_compartment(phi: PhiHarness) -> None:
    mine = await phi.create(patient("Mine", mrn="M-1"))
    theirs = await phi.create(patient("Theirs", mrn="T-1"))
    my_obs = await phi.create(observation(mine["id"]))
    their_obs = await phi.create(observation(theirs["id"]))
    # an Observation of mine that points at the other patient through a non-compartment element
    linked = await phi.create(
        {
            **observation(mine["id"]),
            "hasMember": [{"reference": f"Observation/{their_obs['id']}"}],
            "performer": [{"reference": f"Patient/{theirs['id']}"}],
        }
    )
    scope, claims = "patient/*.rs", {"patient": mine["id"]}

    assert ids(await search(phi, "Patient", scope, **claims)) == [mine["id"]]
    assert ids(await search(phi, "Patient?family=the", scope, **claims)) == []
    assert ids(await search(phi, "Patient?identifier=T-1", scope, **claims)) == []
    assert set(ids(await search(phi, "Observation", scope, **claims))) == {
        my_obs["id"],
        linked["id"],
    }
    assert ids(await search(phi, f"Observation?patient={theirs['id']}", scope, **claims)) == []
    assert ids(await search(phi, "Observation?patient.identifier=T-1", scope, **claims)) == []

    included = await search(
        phi,
        f"Observation?_id={linked['id']}&_include=Observation:has-member"
        "&_include=Observation:performer",
        scope,
        **claims,
    )
    assert typed_ids(included, "include") == set()
    rev = await search(
        phi,
        "Patient?_revinclude=Observation:subject&_revinclude=Observation:performer",
        scope,
        **claims,
    )
    assert typed_ids(rev, "include") == {
        f"Observation/{my_obs['id']}",
        f"Observation/{linked['id']}",
    }

    # a system token sees both
    assert set(ids(await search(phi, "Patient?family=mine,theirs"))) == {mine["id"], theirs["id"]}


async def test_category_limited_scope(phi: PhiHarness) -> None:
    p = await phi.create(patient("Cat"))
    vitals = await phi.create(observation(p["id"], category="vital-signs"))
    await phi.create(observation(p["id"], category="laboratory"))
    scope = "user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
    assert ids(await search(phi, "Observation", scope)) == [vitals["id"]]


async def test_search_needs_a_scope_on_the_type(phi: PhiHarness) -> None:
    response = await phi.http.get("/fhir/Observation", headers=phi.headers("system/Patient.rs"))
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    failures = await audit_records(phi.app, action="fhir.search")
    assert any(r.outcome == "failure" for r in failures)


async def test_consent_denial_hides_the_patient_from_user_searches(phi: PhiHarness) -> None:
    denied = await phi.create(patient("Denied"))
    open_ = await phi.create(patient("Open"))
    await phi.create(
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{denied['id']}"},
            "policyRule": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}
                ]
            },
            "provision": {"type": "deny"},
        }
    )
    found = ids(await search(phi, "Patient", "user/*.rs", roles=["clinician"]))
    assert open_["id"] in found
    assert denied["id"] not in found
    assert denied["id"] in ids(await search(phi, "Patient", "system/*.rs"))


async def test_every_search_is_audited_with_the_returned_patients(phi: PhiHarness) -> None:
    a = await phi.create(patient("Audited", mrn="SECRET-77"))
    await phi.create(observation(a["id"]))
    await search(phi, "Patient?identifier=SECRET-77&_revinclude=Observation:subject")
    last = (await audit_records(phi.app, action="fhir.search"))[-1]
    assert last.patient_ids == [a["id"]]
    assert last.resource_type == "Patient"
    assert last.details["count"] == 1
    assert "SECRET-77" not in repr(last.details)
    assert "Audited" not in repr(last.details)
