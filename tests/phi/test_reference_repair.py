"""Rows written before references were canonical are repaired: migration 0005 (keys set where
it runs) or ``medmesh admin repair-phi-references`` re-derive compartments and reference rows."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from medmesh.cli import app
from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app
from medmesh.phi.migrations import upgrade
from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.protection import load_protection
from medmesh.phi.reference_repair import repair_stored_references
from medmesh.phi.search.models import ReferenceIndexRow
from medmesh.platform.db import Database
from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import TokenVerifier
from tests.phi.conftest import AUDIENCE, BASE, PhiHarness
from tests.phi.resources.support import audit_records, consent, observation, patient


@pytest.fixture
def database_upgrade() -> None:
    """These tests migrate step by step from an empty database."""
    return None


#: A base clients reached the service under, not the configured one.
OWN_BASE = "http://127.0.0.1:8002/fhir"
OTHER_SERVER = "http://other.example.org/fhir"
CLINICIAN: dict[str, Any] = {"scope": "user/*.cruds", "roles": ["clinician"], "sub": "dr-who"}
# What phi indexed and which compartment it chose before references were canonical.
_OLD_REFERENCE = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$"
)


def _old_patient(reference: str) -> str | None:
    if reference.startswith("Patient/"):
        return reference.removeprefix("Patient/").split("/_history/")[0] or None
    return None


async def write_the_old_way(
    database: Database, settings: PhiSettings, resource_id: str, reference: str
) -> None:
    """An Observation stored as phi stored it before: body sealed, compartment and reference
    index rows derived from the spelling as it was."""
    resource = observation("x", id=resource_id)
    resource["subject"] = {"reference": reference}
    resource["meta"] = {"versionId": "1", "lastUpdated": "2026-12-01T00:00:00.000Z"}
    body = load_protection(settings).seal(resource, "Observation", resource_id, 1)
    row = {
        "resource_type": "Observation",
        "id": resource_id,
        "version": 1,
        "last_updated": datetime(2026, 12, 1, tzinfo=UTC),
        "deleted": False,
        "patient_id": _old_patient(reference),
        "body": body,
    }
    match = _OLD_REFERENCE.search(reference)
    async with database.unit_of_work() as session:
        await session.execute(insert(ResourceRow), [row])
        await session.execute(insert(ResourceVersionRow), [{**row, "method": "POST"}])
        if match:
            await session.execute(
                insert(ReferenceIndexRow),
                [
                    {
                        "resource_type": "Observation",
                        "resource_id": resource_id,
                        "param": "subject",
                        "target_type": match["type"],
                        "target_id": match["id"],
                    }
                ],
            )


async def _old_rows(database: Database, settings: PhiSettings, patient_id: str) -> None:
    await write_the_old_way(database, settings, "by-url", f"{OWN_BASE}/Patient/{patient_id}")
    await write_the_old_way(database, settings, "by-slash", f"Patient/{patient_id}/")
    await write_the_old_way(database, settings, "by-case", f"patient/{patient_id}")
    await write_the_old_way(database, settings, "external", f"{OTHER_SERVER}/Patient/{patient_id}")


async def _stored(database: Database) -> dict[str, tuple[str | None, str | None, set[str]]]:
    """id -> (current patient_id, version 1 patient_id, reference rows as Type/id)."""
    async with database.sessionmaker() as session:
        current = dict(
            (await session.execute(select(ResourceRow.id, ResourceRow.patient_id))).tuples().all()
        )
        versions = dict(
            (await session.execute(select(ResourceVersionRow.id, ResourceVersionRow.patient_id)))
            .tuples()
            .all()
        )
        refs: dict[str, set[str]] = {}
        for rid, kind, target in await session.execute(
            select(
                ReferenceIndexRow.resource_id,
                ReferenceIndexRow.target_type,
                ReferenceIndexRow.target_id,
            ).where(ReferenceIndexRow.param == "subject")
        ):
            refs.setdefault(rid, set()).add(f"{kind}/{target}")
    return {
        rid: (current[rid], versions.get(rid), refs.get(rid, set()))
        for rid in ("by-url", "by-slash", "by-case", "external")
    }


def _repaired(patient_id: str) -> dict[str, tuple[str | None, str | None, set[str]]]:
    here = (patient_id, patient_id, {f"Patient/{patient_id}"})
    return {"by-url": here, "by-slash": here, "by-case": here, "external": (None, None, set())}


async def _check_access(phi: PhiHarness, patient_id: str) -> None:
    """The repaired rows are in the patient's compartment, Consent applies, search finds them."""
    own = phi.headers("patient/*.rs", patient=patient_id, roles=["patient"], sub="pat")
    for obs in ("by-url", "by-slash", "by-case"):
        assert (await phi.http.get(f"/fhir/Observation/{obs}", headers=own)).status_code == 200
        refused = await phi.http.get(f"/fhir/Observation/{obs}", headers=phi.headers(**CLINICIAN))
        assert refused.status_code == 403
    assert (await phi.http.get("/fhir/Observation/external", headers=own)).status_code == 403
    everything = await phi.http.get(f"/fhir/Patient/{patient_id}/$everything", headers=own)
    found = {e["resource"]["id"] for e in everything.json()["entry"]}
    assert {"by-url", "by-slash", "by-case"} <= found
    assert "external" not in found
    for value in (f"Patient/{patient_id}", f"{BASE}/fhir/Patient/{patient_id}"):
        search = await phi.http.get(
            "/fhir/Observation", params={"subject": value}, headers=phi.headers()
        )
        assert {e["resource"]["id"] for e in search.json()["entry"]} == {
            "by-url",
            "by-slash",
            "by-case",
        }


async def test_the_cli_step_puts_old_rows_into_their_compartment(phi: PhiHarness) -> None:
    denied: str = (await phi.create(patient("Private")))["id"]
    await phi.create(consent(denied))
    database: Database = phi.app.state.database
    await _old_rows(database, phi.settings, denied)

    report = await repair_stored_references(phi.settings, base_urls=[OWN_BASE], actor="ops")

    assert (report.compartments_fixed, report.versions_fixed) == (3, 3)
    assert report.indexes_fixed == 3  # by-slash and by-case gain a row, external loses its own
    assert report.unreadable == 0
    assert sorted(report.changed) == [
        "Observation/by-case",
        "Observation/by-slash",
        "Observation/by-url",
    ]
    assert await _stored(database) == _repaired(denied)
    await _check_access(phi, denied)
    [record] = await audit_records(phi.app, action="phi.references_repaired")
    assert (record.actor, record.outcome) == ("ops", "success")
    assert record.patient_ids == [denied]
    assert record.details["compartments_fixed"] == 3

    again = await repair_stored_references(phi.settings, base_urls=[OWN_BASE])
    assert (again.compartments_fixed, again.versions_fixed, again.indexes_fixed) == (0, 0, 0)


async def test_without_the_base_an_absolute_url_stays_external(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    database: Database = phi.app.state.database
    await write_the_old_way(database, phi.settings, "by-url", f"{OWN_BASE}/Patient/{owner}")
    report = await repair_stored_references(phi.settings)
    assert (report.compartments_fixed, report.indexes_fixed) == (0, 1)
    search = await phi.http.get(
        "/fhir/Observation", params={"subject": f"Patient/{owner}"}, headers=phi.headers()
    )
    assert search.json().get("entry", []) == []


@asynccontextmanager
async def _harness(settings: PhiSettings, tokens: TokenFactory) -> AsyncIterator[PhiHarness]:
    app = create_app(settings)
    app.state.verifier = TokenVerifier("http://auth.test", AUDIENCE, jwks=tokens.jwks())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield PhiHarness(app, http, tokens, settings)


async def test_migration_0005_repairs_when_the_keys_are_set(
    phi_settings: PhiSettings, token_factory: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = phi_settings.effective_database_url
    await upgrade(url, "0004")
    database = Database(url)
    try:
        await _old_rows(database, phi_settings, "pat-1")
    finally:
        await database.dispose()
    monkeypatch.setenv("MEDMESH_PHI_ENCRYPTION_KEYS", phi_settings.encryption_keys)
    monkeypatch.setenv("MEDMESH_PHI_BLIND_INDEX_KEY", phi_settings.blind_index_key)
    monkeypatch.setenv("MEDMESH_PHI_BASE_URL", OWN_BASE)

    await upgrade(url)

    async with _harness(phi_settings, token_factory) as phi:
        assert await _stored(phi.app.state.database) == _repaired("pat-1")
        response = await phi.http.put(
            "/fhir/Patient/pat-1", json={**patient(), "id": "pat-1"}, headers=phi.headers()
        )
        assert response.status_code == 201
        await phi.create(consent("pat-1"))
        await _check_access(phi, "pat-1")


async def test_migration_0005_without_keys_leaves_rows_for_the_cli_step(
    phi_settings: PhiSettings, token_factory: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = phi_settings.effective_database_url
    await upgrade(url, "0004")
    database = Database(url)
    try:
        await _old_rows(database, phi_settings, "pat-2")
        before = await _stored(database)
        monkeypatch.delenv("MEDMESH_PHI_ENCRYPTION_KEYS", raising=False)
        monkeypatch.delenv("MEDMESH_PHI_BLIND_INDEX_KEY", raising=False)
        await upgrade(url)
        assert await _stored(database) == before
    finally:
        await database.dispose()
    await repair_stored_references(phi_settings, base_urls=[OWN_BASE])
    database = Database(url)
    try:
        assert await _stored(database) == _repaired("pat-2")
    finally:
        await database.dispose()


async def test_the_cli_command_repairs_with_the_services_settings(
    phi_settings: PhiSettings,
) -> None:
    url = phi_settings.effective_database_url
    await upgrade(url)
    database = Database(url)
    try:
        await _old_rows(database, phi_settings, "pat-3")
    finally:
        await database.dispose()
    env = {
        "MEDMESH_PHI_DATABASE_URL": url,
        "MEDMESH_PHI_VAR_DIR": str(phi_settings.var_dir),
        "MEDMESH_PHI_ENCRYPTION_KEYS": phi_settings.encryption_keys,
        "MEDMESH_PHI_BLIND_INDEX_KEY": phi_settings.blind_index_key,
    }
    args = ["admin", "repair-phi-references", "--base-url", OWN_BASE, "--page-size", "2"]
    # The command runs its own event loop (asyncio.run), so it runs off this test's loop.
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "3 compartments, 3 version compartments and 3 reference indexes fixed" in result.output
    database = Database(url)
    try:
        assert await _stored(database) == _repaired("pat-3")
    finally:
        await database.dispose()
