"""A plain create commits in a write transaction of its own (``ResourceStore.write``, ``alone``):
on the embedded SQLite driver, outside the request's session, in a group commit with concurrent
requests. The same resources created that way and through the session store the same rows."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from medmesh.phi.bulk_import.standalone import cli_context
from medmesh.phi.components import PhiState
from medmesh.phi.models import ResourceRow
from medmesh.phi.resources import storage
from medmesh.phi.resources.service import ResourceService
from medmesh.platform.db import direct_writes
from medmesh.platform.db.direct_writes import direct_applies
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import consent, observation, patient

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HL7 = Path("/work/shared/conformance/hl7")
INDEX_TABLES = ("search_strings", "search_tokens", "search_dates", "search_references")


class Counted:
    """``storage.write_transaction``, counting the transactions it opens."""

    def __init__(self) -> None:
        self.opened = 0
        self.wrapped = direct_writes.write_transaction

    def __call__(self, database: Any) -> Any:
        self.opened += 1
        return self.wrapped(database)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    counter = Counted()
    monkeypatch.setattr(storage, "write_transaction", counter)
    return counter


def _examples() -> list[dict[str, Any]]:
    """The HL7 examples phi stores (not Bundles, not OperationOutcomes), without their ids."""
    examples = []
    for path in sorted(HL7.glob("*-*.json")):
        resource = json.loads(path.read_text())
        if resource["resourceType"] not in ("Bundle", "OperationOutcome"):
            examples.append({k: v for k, v in resource.items() if k != "id"})
    return examples


def _resources(phi: PhiHarness) -> ResourceService:
    return PhiState.of(phi.app).phi.resources


def _stored(path: Path, resource_type: str, resource_id: str) -> dict[str, Any]:
    """Every row of one resource as stored (its id replaced by ``ID`` wherever it is, a
    Patient's compartment too), body and time aside."""
    with sqlite3.connect(path) as db:
        found: dict[str, Any] = {}
        for table in ("resources", "resource_versions", *INDEX_TABLES):
            cursor = db.execute(
                f"SELECT * FROM {table} WHERE resource_type = ? AND "
                + ("id" if table.startswith("resource") else "resource_id")
                + " = ? ORDER BY 1, 2, 3, 4",
                (resource_type, resource_id),
            )
            names = [d[0] for d in cursor.description]
            rows = []
            for row in cursor:
                values = {
                    name: "ID" if value == resource_id else value
                    for name, value in zip(names, row, strict=True)
                }
                values.pop("body", None)
                values.pop("last_updated", None)
                rows.append(values)
            found[table] = rows
        return found


async def _create_all(phi: PhiHarness, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    created = []
    for resource in resources:
        response = await phi.http.post(
            f"/fhir/{resource['resourceType']}", json=resource, headers=phi.headers()
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


async def test_a_create_stores_what_the_session_stores(
    phi: PhiHarness, database_url: str, counted: Counted
) -> None:
    path = Path(database_url.removeprefix("sqlite+medmesh:///"))
    resources = [*_examples(), patient("Direct"), observation("p1", valueQuantity={"value": 1.50})]
    assert len(resources) >= 19
    service = _resources(phi)
    assert service.database is not None
    assert direct_applies(service.database)

    own = await _create_all(phi, resources)
    assert counted.opened == len(resources)
    service.database = None  # every create through the request's session
    through_session = await _create_all(phi, resources)
    assert counted.opened == len(resources)

    for first, second in zip(own, through_session, strict=True):
        kind = first["resourceType"]
        assert {k: v for k, v in first.items() if k not in ("id", "meta")} == {
            k: v for k, v in second.items() if k not in ("id", "meta")
        }
        assert _stored(path, kind, first["id"]) == _stored(path, kind, second["id"])
        for created in (first, second):
            read = await phi.http.get(f"/fhir/{kind}/{created['id']}", headers=phi.headers())
            assert read.json() == created
    searched = await phi.http.get(
        "/fhir/Observation?code=http://loinc.org|85354-9", headers=phi.headers()
    )
    assert searched.json()["total"] == 2 * sum(
        1
        for r in resources
        if r["resourceType"] == "Observation"
        and {"system": "http://loinc.org", "code": "85354-9"}.items()
        <= r["code"]["coding"][0].items()
    )


async def test_concurrent_creates_commit_each_once(phi: PhiHarness, counted: Counted) -> None:
    created = await asyncio.gather(*(phi.create(patient(f"Together{n}")) for n in range(40)))

    assert counted.opened == 40
    assert len({c["id"] for c in created}) == 40
    found = await phi.http.get("/fhir/Patient?_count=100", headers=phi.headers())
    assert sorted(e["resource"]["id"] for e in found.json()["entry"]) == sorted(
        c["id"] for c in created
    )
    for n in (0, 39):
        named = await phi.http.get(f"/fhir/Patient?family=Together{n}", headers=phi.headers())
        assert [e["resource"]["id"] for e in named.json()["entry"]] == [created[n]["id"]]


async def test_a_session_already_begun_keeps_the_create(
    phi: PhiHarness, database_url: str, counted: Counted
) -> None:
    """A create in a session that has begun is that session's: its rollback undoes it."""
    state = PhiState.of(phi.app)
    service = state.phi.resources
    ctx = cli_context(phi.settings)
    async with state.database.sessionmaker() as session:
        await session.execute(select(ResourceRow.id).limit(1))
        stored, created = await service.create(session, ctx, patient("Begun"), "Patient")
        assert created
        await session.rollback()

    assert counted.opened == 0
    read = await phi.http.get(f"/fhir/Patient/{stored.id}", headers=phi.headers())
    assert read.status_code == 404


async def test_a_consent_is_created_through_the_session(phi: PhiHarness, counted: Counted) -> None:
    """The consent registry learns of a Consent when the session commits."""
    subject = await phi.create(patient())
    await phi.create(observation(subject["id"]))
    await phi.create(consent(subject["id"], "deny"))

    assert counted.opened == 2
    clinician = phi.headers("user/*.cruds", roles=["clinician"], sub="dr-who")
    refused = await phi.http.get(f"/fhir/Patient/{subject['id']}", headers=clinician)
    assert refused.status_code == 403
