"""The index follows every write: updates replace rows, deletes drop them, deferred blocks batch."""

from __future__ import annotations

from medmesh.phi.search.repository import SearchRepository, pending_rows
from tests.phi.conftest import PhiHarness
from tests.phi.search.support import ids, patient, search


async def test_updates_replace_and_deletes_remove_index_rows(phi: PhiHarness) -> None:
    p = await phi.create(patient("Before", mrn="OLD-1"))
    changed = {**p, "name": [{"family": "After"}], "identifier": [{"value": "NEW-1"}]}
    response = await phi.http.put(f"/fhir/Patient/{p['id']}", json=changed, headers=phi.headers())
    assert response.status_code == 200
    assert ids(await search(phi, "Patient?family=before")) == []
    assert ids(await search(phi, "Patient?identifier=OLD-1")) == []
    assert ids(await search(phi, "Patient?family=after")) == [p["id"]]
    assert (
        await phi.http.delete(f"/fhir/Patient/{p['id']}", headers=phi.headers())
    ).status_code == 204
    assert ids(await search(phi, "Patient?family=after")) == []
    assert ids(await search(phi, "Patient")) == []


async def test_deferred_writes_are_searchable_within_and_after_the_block(phi: PhiHarness) -> None:
    components = phi.app.state.phi
    async with phi.app.state.database.unit_of_work() as session, components.index.deferred(session):
        first, _ = await components.resources.write(
            session, patient("Deferred", mrn="D-1"), method="POST"
        )
        second, _ = await components.resources.write(
            session, patient("Deferred", mrn="D-2"), method="POST"
        )
        updated = {**second.resource, "identifier": [{"value": "D-3"}]}
        await components.resources.write(session, updated, resource_id=second.id)
        assert pending_rows(session)
        # a search inside the block inserts what is pending first
        assert await SearchRepository(session).ids("Patient", [], 10)
        assert not pending_rows(session)
        third, _ = await components.resources.write(
            session, patient("Deferred", mrn="D-4"), method="POST"
        )
        await components.resources.write(
            session, {**third.resource, "gender": "male"}, resource_id=third.id
        )
    assert set(ids(await search(phi, "Patient?family=deferred"))) == {first.id, second.id, third.id}
    assert ids(await search(phi, "Patient?identifier=D-2")) == []
    assert ids(await search(phi, "Patient?identifier=D-3")) == [second.id]
    assert ids(await search(phi, "Patient?gender=male")) == [third.id]
