"""The ``medmesh`` command for phi-service: migrate, audit verify, key rotation, demo data, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from medmesh.cli import SERVICES, app, openapi_document
from medmesh.phi.config import PhiSettings
from medmesh.phi.demo import demo_resources, seed_demo_with
from medmesh.phi.main import create_app
from medmesh.phi.migrations import upgrade
from medmesh.phi.models import ResourceVersionRow
from medmesh.phi.protection import PhiProtection, load_protection
from medmesh.platform.audit import audit_database_for, list_records
from medmesh.platform.crypto import KeyRing
from medmesh.platform.db import Database
from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import TokenVerifier
from tests.cli.commands import invoke
from tests.phi.conftest import AUDIENCE, BLIND_KEY

FHIR = {"Content-Type": "application/fhir+json"}


def phi_settings(database_url: str, var_dir: Path, keys: str) -> PhiSettings:
    return PhiSettings(
        database_url=database_url,
        var_dir=var_dir,
        issuer="http://auth.test",
        encryption_keys=keys,
        blind_index_key=BLIND_KEY,
    )


def env_of(settings: PhiSettings) -> dict[str, str]:
    return {
        "MEDMESH_PHI_DATABASE_URL": settings.effective_database_url,
        "MEDMESH_PHI_VAR_DIR": str(settings.var_dir),
        "MEDMESH_PHI_ENCRYPTION_KEYS": settings.encryption_keys,
        "MEDMESH_PHI_BLIND_INDEX_KEY": settings.blind_index_key,
    }


@asynccontextmanager
async def running_phi(settings: PhiSettings, tokens: TokenFactory) -> AsyncIterator[Any]:
    await upgrade(settings.effective_database_url)
    phi_app = create_app(settings)
    phi_app.state.verifier = TokenVerifier("http://auth.test", AUDIENCE, jwks=tokens.jwks())
    async with phi_app.router.lifespan_context(phi_app):
        yield phi_app


async def create_patients(phi_app: Any, tokens: TokenFactory, n: int) -> list[str]:
    headers = {**tokens.headers("system/*.cruds", audience=AUDIENCE), **FHIR}
    transport = httpx.ASGITransport(app=phi_app)
    created = []
    async with httpx.AsyncClient(transport=transport, base_url="http://phi.test") as http:
        for i in range(n):
            patient = {"resourceType": "Patient", "name": [{"family": f"Rotated{i}"}]}
            response = await http.post("/fhir/Patient", json=patient, headers=headers)
            assert response.status_code == 201, response.text
            # A second version, so that history as well as the current row is rotated.
            body = {**response.json(), "gender": "female"}
            updated = await http.put(f"/fhir/Patient/{body['id']}", json=body, headers=headers)
            assert updated.status_code == 200, updated.text
            created.append(body["id"])
    return created


async def stored_bodies(protection: PhiProtection, settings: PhiSettings) -> list[str]:
    """The family name of every stored version, opened with ``protection`` (raises if it can't)."""
    database = Database(settings.effective_database_url)
    try:
        async with database.unit_of_work() as session:
            rows = (await session.scalars(select(ResourceVersionRow))).all()
            return [
                protection.open(r.body, r.resource_type, r.id, r.version)["name"][0]["family"]  # type: ignore[index]
                for r in rows
                if r.body is not None
            ]
    finally:
        await database.dispose()


async def test_rotate_phi_keys_reencrypts_every_version(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    old = KeyRing.generate("k1")
    settings = phi_settings(database_url, tmp_path, old.to_setting())
    async with running_phi(settings, token_factory) as phi_app:
        await create_patients(phi_app, token_factory, 7)

    new = KeyRing.generate("k2")
    rotated = settings.model_copy(
        update={"encryption_keys": new.to_setting() + "," + old.to_setting()}
    )
    result = await invoke(["admin", "rotate-phi-keys", "--page-size", "3"], env_of(rotated))
    assert result.exit_code == 0, result.output
    assert "14 versions scanned, 14 re-encrypted (7 current), 0 still under older keys" in (
        result.output
    )
    # Only the new key is needed now; a second run has nothing to do.
    only_new = settings.model_copy(update={"encryption_keys": new.to_setting()})
    families = await stored_bodies(load_protection(only_new), only_new)
    assert sorted(families) == sorted(f"Rotated{i}" for i in range(7) for _ in range(2))
    again = await invoke(["admin", "rotate-phi-keys"], env_of(only_new))
    assert again.exit_code == 0, again.output
    assert "14 versions scanned, 0 re-encrypted" in again.output

    async with running_phi(only_new, token_factory) as phi_app:
        headers = token_factory.headers("system/*.cruds", audience=AUDIENCE)
        transport = httpx.ASGITransport(app=phi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://phi.test") as http:
            found = await http.get("/fhir/Patient?family=rotated3", headers=headers)
        assert found.status_code == 200, found.text
        assert found.json()["entry"][0]["resource"]["name"][0]["family"] == "Rotated3"
        database = phi_app.state.database
        audit_db = audit_database_for(database)
        records = await list_records(audit_db, action="phi.keys_rotated")
        if audit_db is not database:
            await audit_db.dispose()
    assert [r.details["rotated"] for r in records] == [14, 0]
    assert {r.actor for r in records} == {"cli"}
    verify = await invoke(["audit", "verify", "phi"], env_of(only_new))
    assert verify.exit_code == 0, verify.output


async def test_rotation_can_resume_after_a_given_key(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    old = KeyRing.generate("k1")
    settings = phi_settings(database_url, tmp_path, old.to_setting())
    async with running_phi(settings, token_factory) as phi_app:
        ids = sorted(await create_patients(phi_app, token_factory, 4))
    both = settings.model_copy(
        update={"encryption_keys": KeyRing.generate("k2").to_setting() + "," + old.to_setting()}
    )
    partial = await invoke(
        ["admin", "rotate-phi-keys", "--start-after", f"Patient/{ids[1]}/2"], env_of(both)
    )
    # Versions of the first two patients are before the cursor: still under k1.
    assert partial.exit_code == 1, partial.output
    assert "4 versions scanned, 4 re-encrypted (2 current), 4 still under older keys" in (
        partial.output
    )
    bad = await invoke(["admin", "rotate-phi-keys", "--start-after", "Patient/x"], env_of(both))
    assert bad.exit_code == 2
    rest = await invoke(["admin", "rotate-phi-keys"], env_of(both))
    assert rest.exit_code == 0, rest.output
    assert "0 still under older keys" in rest.output


async def test_audit_verify_phi_detects_an_edited_record(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    settings = phi_settings(database_url, tmp_path, KeyRing.generate().to_setting())
    async with running_phi(settings, token_factory) as phi_app:
        await create_patients(phi_app, token_factory, 2)
        database = phi_app.state.database
    ok = await invoke(["audit", "verify", "phi"], env_of(settings))
    assert ok.exit_code == 0, ok.output
    assert "phi: audit trail intact" in ok.output

    audit_db = audit_database_for(type(database)(settings.effective_database_url))
    async with audit_db.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET resource_id = 'other' WHERE seq = 2"))
    await audit_db.dispose()
    broken = await invoke(["audit", "verify", "phi"], env_of(settings))
    assert broken.exit_code == 1, broken.output
    assert "BROKEN at record 2" in broken.output


async def test_migrate_phi_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"MEDMESH_PHI_VAR_DIR": str(tmp_path), "MEDMESH_PHI_DATABASE_URL": ""}
    for _ in range(2):
        result = await invoke(["migrate", "phi"], env)
        assert result.exit_code == 0, result.output
        assert "phi: database is at the latest revision" in result.output
    assert (tmp_path / "phi.db").is_file()


def test_phi_is_a_service_of_the_cli_and_documents_its_api() -> None:
    assert list(SERVICES)[:2] == ["auth", "phi"]
    document = openapi_document("phi")
    assert document["info"]["title"] == "medmesh phi-service"
    assert "/fhir/metadata" in document["paths"]
    assert "/fhir/{resource_type}/{resource_id}" in document["paths"]


async def test_demo_data_seeds_once(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    resources = demo_resources()
    assert [r["resourceType"] for r in resources][:2] == ["Practitioner", "Patient"]
    settings = phi_settings(database_url, tmp_path, KeyRing.generate().to_setting())
    await upgrade(settings.effective_database_url)
    bearer = token_factory.headers("system/*.cruds", audience=AUDIENCE)
    phi_app = create_app(settings)
    phi_app.state.verifier = TokenVerifier("http://auth.test", AUDIENCE, jwks=token_factory.jwks())

    transport = httpx.ASGITransport(app=phi_app)
    async with (
        phi_app.router.lifespan_context(phi_app),
        httpx.AsyncClient(
            transport=transport, base_url="http://phi.test/fhir", headers=bearer
        ) as http,
    ):
        first = await seed_demo_with(http)
        second = await seed_demo_with(http)
        assert second.created == []
        bundle = (await http.get("/Observation", params={"subject": "Patient/example"})).json()
    created, present = first.created, second.present
    expected = [f"{r['resourceType']}/{r['id']}" for r in resources]
    assert created == expected
    assert present == expected
    assert bundle["total"] == 4


@pytest.mark.parametrize("option", ["--start-after=Patient/a/b", "--page-size=0"])
def test_rotate_phi_keys_refuses_bad_options(option: str) -> None:
    result = CliRunner().invoke(app, ["admin", "rotate-phi-keys", option])
    assert result.exit_code == 2
