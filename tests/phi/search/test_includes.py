"""``_include`` and ``_revinclude``."""

from __future__ import annotations

from tests.phi.conftest import PhiHarness
from tests.phi.search.support import ids, observation, patient, search, typed_ids


async def test_include_brings_the_referenced_resources_once(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha"))
    b = await phi.create(patient("Beta"))
    o1 = await phi.create(observation(a["id"]))
    o2 = await phi.create(observation(a["id"], "2339-0"))
    await phi.create(observation(b["id"]))

    bundle = await search(phi, f"Observation?patient={a['id']}&_include=Observation:patient")
    assert set(ids(bundle)) == {o1["id"], o2["id"]}
    assert ids(bundle, "include") == [a["id"]]
    subject = await search(
        phi, f"Observation?patient={a['id']}&_include=Observation:subject:Patient"
    )
    assert ids(subject, "include") == [a["id"]]


async def test_include_of_practitioner(phi: PhiHarness) -> None:
    doc = await phi.create({"resourceType": "Practitioner", "name": [{"family": "Hibbert"}]})
    a = await phi.create(
        {**patient("Alpha"), "generalPractitioner": [{"reference": f"Practitioner/{doc['id']}"}]}
    )
    bundle = await search(phi, f"Patient?_id={a['id']}&_include=Patient:general-practitioner")
    assert typed_ids(bundle, "include") == {f"Practitioner/{doc['id']}"}
    everything = await search(phi, f"Patient?_id={a['id']}&_include=Patient:*")
    assert typed_ids(everything, "include") == {f"Practitioner/{doc['id']}"}


async def test_revinclude_brings_the_referencing_resources(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha"))
    b = await phi.create(patient("Beta"))
    o1 = await phi.create(observation(a["id"]))
    o2 = await phi.create(observation(b["id"]))
    cond = await phi.create(
        {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{a['id']}"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        }
    )

    bundle = await search(
        phi, f"Patient?_id={a['id']}&_revinclude=Observation:subject&_revinclude=Condition:patient"
    )
    assert ids(bundle) == [a["id"]]
    assert typed_ids(bundle, "include") == {f"Observation/{o1['id']}", f"Condition/{cond['id']}"}
    both = await search(phi, "Patient?_revinclude=Observation:patient")
    assert typed_ids(both, "include") == {f"Observation/{o1['id']}", f"Observation/{o2['id']}"}


async def test_includes_are_capped(phi: PhiHarness) -> None:
    phi.app.state.phi.search.settings.max_include = 2
    a = await phi.create(patient("Alpha"))
    for _ in range(3):
        await phi.create(observation(a["id"]))
    bundle = await search(phi, f"Patient?_id={a['id']}&_revinclude=Observation:subject")
    assert len(ids(bundle, "include")) == 2
    assert [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]


async def test_bad_include_is_400(phi: PhiHarness) -> None:
    for value in ("Observation:code", "Observation:nothing", "Patient:subject"):
        response = await phi.http.get(f"/fhir/Observation?_include={value}", headers=phi.headers())
        assert response.status_code == 400, value
