"""PhiProtection and key rotation: sealed bodies open only where they belong, under any key
of the ring, and rotation moves every stored version to the active key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app
from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.protection import PhiProtection, load_protection
from medmesh.phi.rotation import KeyRotation
from medmesh.platform.crypto import DecryptionFailed, KeyRing
from medmesh.platform.db import Database
from tests.phi.conftest import BLIND_KEY, PhiHarness

RESOURCE: dict[str, object] = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Sealed"}],
}


def protection(*rings: KeyRing) -> PhiProtection:
    setting = ",".join(ring.to_setting() for ring in rings)
    return load_protection(PhiSettings(encryption_keys=setting, blind_index_key=BLIND_KEY))


def test_seal_and_open_round_trip() -> None:
    p = protection(KeyRing.generate("k1"))
    blob = p.seal(RESOURCE, "Patient", "p1", 1)
    assert b"Sealed" not in blob
    assert p.open(blob, "Patient", "p1", 1) == RESOURCE
    # A fresh data key and nonce every time: the same resource never seals the same way.
    assert p.seal(RESOURCE, "Patient", "p1", 1) != blob


@pytest.mark.parametrize(
    ("resource_type", "resource_id", "version"),
    [("Patient", "p2", 1), ("Patient", "p1", 2), ("Practitioner", "p1", 1)],
)
def test_a_body_opens_only_on_its_own_row(
    resource_type: str, resource_id: str, version: int
) -> None:
    p = protection(KeyRing.generate("k1"))
    blob = p.seal(RESOURCE, "Patient", "p1", 1)
    with pytest.raises(DecryptionFailed) as caught:
        p.open(blob, resource_type, resource_id, version)
    assert "Sealed" not in str(caught.value)


def test_a_tampered_body_does_not_open() -> None:
    p = protection(KeyRing.generate("k1"))
    blob = bytearray(p.seal(RESOURCE, "Patient", "p1", 1))
    blob[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        p.open(bytes(blob), "Patient", "p1", 1)


def test_old_keys_still_open_and_reseal_moves_to_the_active_key() -> None:
    old, new = KeyRing.generate("k1"), KeyRing.generate("k2")
    blob = protection(old).seal(RESOURCE, "Patient", "p1", 1)
    ring = protection(new, old)
    assert ring.open(blob, "Patient", "p1", 1) == RESOURCE
    resealed = ring.reseal(blob, "Patient", "p1", 1)
    assert resealed is not None
    assert ring.keys.kid_of(resealed) == "k2"
    assert ring.reseal(resealed, "Patient", "p1", 1) is None
    assert protection(new).open(resealed, "Patient", "p1", 1) == RESOURCE
    with pytest.raises(DecryptionFailed):
        protection(new).open(blob, "Patient", "p1", 1)
    # Rotation authenticates before re-wrapping: a body on the wrong row is not "rotated".
    with pytest.raises(DecryptionFailed):
        ring.reseal(blob, "Patient", "p2", 1)


def test_a_key_missing_from_the_ring_is_named_not_shown() -> None:
    blob = protection(KeyRing.generate("gone")).seal(RESOURCE, "Patient", "p1", 1)
    with pytest.raises(DecryptionFailed, match="'gone'"):
        protection(KeyRing.generate("k1")).open(blob, "Patient", "p1", 1)


def test_development_keys_are_created_once(tmp_path: Path) -> None:
    settings = PhiSettings(var_dir=tmp_path)
    first, second = load_protection(settings), load_protection(settings)
    blob = first.seal(RESOURCE, "Patient", "p1", 1)
    assert second.open(blob, "Patient", "p1", 1) == RESOURCE
    assert first.blind_index.token("Sealed") == second.blind_index.token("sealed")
    assert (tmp_path / "phi-keys.key").stat().st_mode & 0o077 == 0


def test_production_refuses_to_run_without_keys(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="MEDMESH_PHI_ENCRYPTION_KEYS"):
        load_protection(PhiSettings(var_dir=tmp_path, environment="production"))


async def test_a_body_moved_to_another_row_is_refused_by_the_api(phi: PhiHarness) -> None:
    a = await phi.create({"resourceType": "Patient", "name": [{"family": "Alpha"}]})
    b = await phi.create({"resourceType": "Patient", "name": [{"family": "Beta"}]})
    database: Database = phi.app.state.database
    async with database.unit_of_work() as session:
        body_a = await session.scalar(select(ResourceRow.body).where(ResourceRow.id == a["id"]))
        v = ResourceVersionRow
        await session.execute(update(v).where(v.id == b["id"], v.version == 1).values(body=body_a))
    response = await phi.http.get(f"/fhir/Patient/{b['id']}", headers=phi.headers())
    # An attacker with write access to the table cannot make B's URL serve A's record; a failed
    # integrity check of stored data is the server's problem (500 "exception"), not the client's.
    assert response.status_code == 500, response.text
    assert "Alpha" not in response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "exception"


async def test_rotation_reencrypts_stored_versions_and_old_data_still_reads(
    phi: PhiHarness,
) -> None:
    created = []
    for i in range(5):
        resource = await phi.create({"resourceType": "Patient", "name": [{"family": f"Rot{i}"}]})
        resource["gender"] = "unknown"
        response = await phi.http.put(
            f"/fhir/Patient/{resource['id']}", json=resource, headers=phi.headers()
        )
        assert response.status_code == 200
        created.append(resource["id"])
    database: Database = phi.app.state.database
    old_setting = phi.settings.encryption_keys
    new = KeyRing.generate("rotated")
    both = load_protection(
        phi.settings.model_copy(update={"encryption_keys": f"{new.to_setting()},{old_setting}"})
    )

    # A first, interrupted run: two pages of three, then a resumed run from where it stopped.
    rotation = KeyRotation(database, both, page_size=3)
    first = await rotation.run(max_pages=2)
    assert (first.scanned, first.rotated, first.remaining) == (6, 6, 4)
    rest = await rotation.run(start_after=first.last_key)
    assert (rest.scanned, rest.rotated, rest.remaining) == (4, 4, 0)
    assert rest.current_rows + first.current_rows == 5

    async with database.unit_of_work() as session:
        versions = (await session.scalars(select(ResourceVersionRow))).all()
        current = (await session.scalars(select(ResourceRow))).all()
    assert len(versions) == 10
    only_new_settings = phi.settings.model_copy(update={"encryption_keys": new.to_setting()})
    only_new = load_protection(only_new_settings)
    rows: list[ResourceRow | ResourceVersionRow] = [*versions, *current]
    for row in rows:
        assert row.body is not None
        assert only_new.keys.kid_of(row.body) == "rotated"
        assert only_new.open(row.body, row.resource_type, row.id, row.version)["id"] == row.id
    # A phi-service restarted with the new key alone reads every version, old ones included.
    restarted = create_app(only_new_settings)
    restarted.state.verifier = phi.app.state.verifier
    transport = httpx.ASGITransport(app=restarted)
    async with (
        restarted.router.lifespan_context(restarted),
        httpx.AsyncClient(transport=transport, base_url="http://phi.test") as http,
    ):
        for i, resource_id in enumerate(created):
            for url in (f"/fhir/Patient/{resource_id}/_history/1", f"/fhir/Patient/{resource_id}"):
                response = await http.get(url, headers=phi.headers())
                assert response.status_code == 200, response.text
                assert response.json()["name"][0]["family"] == f"Rot{i}"
        found = await http.get("/fhir/Patient?family=rot3", headers=phi.headers())
        assert [e["resource"]["id"] for e in found.json()["entry"]] == [created[3]]
    # Nothing left to do on a second run.
    again = await KeyRotation(database, both).run()
    assert (again.rotated, again.remaining) == (0, 0)
