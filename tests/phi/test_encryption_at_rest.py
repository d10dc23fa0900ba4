"""After loading patients, their direct identifiers occur nowhere in the database.

Patients with distinctive family names, phone numbers, e-mail addresses and identifier
values are written through every write path (create, update, conditional create,
transaction), then every byte the database holds is searched for them: on SQLite the
main file, the audit file and their WAL/SHM files; on PostgreSQL every table of the test
database dumped as text (bytea columns appear hex-encoded, so the hex form is searched too).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from medmesh.platform.audit import audit_database_for
from medmesh.platform.db import Database, is_sqlite
from medmesh.platform.testing import LogLines
from tests.phi.conftest import PhiHarness

FAMILIES = ["Vandermeerschaert", "Oyelaran-Quist", "Brzęczyszczykiewicz"]
GIVEN = "Thaddeusina"
PHONES = ["+1 (617) 555-0187", "617-555-0942", "6175550311"]
EMAIL = "ondine.vandermeerschaert@mailbox.example"
MRNS = ["MRN-88Q-31975", "SSN-999-41-7733", "ZK4471920QX"]
STREET = "1482 Quincewood Lane"


def secrets() -> list[str]:
    values = [*FAMILIES, GIVEN, *PHONES, EMAIL, *MRNS, STREET, "5550187", "Brzeczyszczykiewicz"]
    return sorted({v for value in values for v in (value, value.lower(), value.upper())})


def patient(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "http://hospital.example/mrn", "value": MRNS[index]}],
        "name": [{"family": FAMILIES[index], "given": [GIVEN]}],
        "telecom": [
            {"system": "phone", "value": PHONES[index]},
            {"system": "email", "value": EMAIL},
        ],
        "address": [{"line": [STREET], "city": "Boston", "postalCode": "02134"}],
        "gender": "female",
        "birthDate": "1961-07-14",
    }


async def load_patients(phi: PhiHarness) -> list[str]:
    first = await phi.create(patient(0))
    # Update: a second version of the same patient (and its index rows rewritten).
    updated = {**first, "active": True}
    response = await phi.http.put(
        f"/fhir/Patient/{first['id']}", json=updated, headers=phi.headers()
    )
    assert response.status_code == 200, response.text
    # Conditional create on the identifier: the blind index finds the existing patient.
    headers = {**phi.headers(), "If-None-Exist": f"identifier={MRNS[0]}"}
    again = await phi.http.post("/fhir/Patient", json=patient(0), headers=headers)
    assert again.status_code == 200, again.text
    # A transaction with the other two, and an Observation that references one of them.
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": patient(1),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": patient(2), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "heart rate"},
                    "subject": {"reference": patient_urn, "display": FAMILIES[1]},
                    "valueQuantity": {"value": 61, "unit": "/min"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    result = await phi.http.post("/fhir", json=bundle, headers=phi.headers())
    assert result.status_code == 200, result.text
    ids = [first["id"]]
    ids += [e["response"]["location"].split("/")[1] for e in result.json()["entry"][:2]]
    return ids


async def search_ids(phi: PhiHarness, query: str) -> list[str]:
    response = await phi.http.get(f"/fhir/{query}", headers=phi.headers())
    assert response.status_code == 200, response.text
    return [entry["resource"]["id"] for entry in response.json().get("entry", [])]


def sqlite_bytes(url: str) -> dict[str, bytes]:
    """Every file of the SQLite database and its audit sibling (-wal, -shm included)."""
    main = Path(str(make_url(url).database))
    files = {p for p in main.parent.glob(main.name + "*")}
    files |= set(main.parent.glob(main.stem + "-audit*"))
    return {p.name: p.read_bytes() for p in sorted(files)}


async def postgres_dump(database: Database) -> dict[str, str]:
    """Every table of the database, each row rendered as text."""
    dumps = {}
    async with database.unit_of_work() as session:
        tables = (
            await session.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                )
            )
        ).scalars()
        for name in list(tables):
            rows = await session.execute(text(f'SELECT t::text FROM "{name}" t'))
            dumps[name] = "\n".join(row[0] for row in rows)
    return dumps


def assert_absent(haystacks: dict[str, bytes]) -> None:
    for where, data in haystacks.items():
        for secret in secrets():
            raw = secret.encode()
            assert raw not in data, (where, secret)
            assert raw.hex().encode() not in data.lower(), (where, secret, "hex")


async def test_direct_identifiers_never_reach_the_database(
    phi: PhiHarness, log_lines: LogLines
) -> None:
    ids = await load_patients(phi)
    # The data is really there, and searchable through the blind indexes.
    assert await search_ids(phi, "Patient?family=vandermeer") == [ids[0]]
    assert await search_ids(phi, "Patient?family=brzeczy") == [ids[2]]
    assert await search_ids(phi, f"Patient?identifier={MRNS[1]}") == [ids[1]]
    assert sorted(await search_ids(phi, f"Patient?email={EMAIL}")) == sorted(ids)
    assert await search_ids(phi, "Patient?phone=617-555-0942") == [ids[1]]
    read = await phi.http.get(f"/fhir/Patient/{ids[2]}", headers=phi.headers())
    assert read.json()["name"][0]["family"] == FAMILIES[2]

    database: Database = phi.app.state.database
    url = phi.settings.effective_database_url
    if is_sqlite(url):
        # First as the WAL holds it (no checkpoint yet), then after the checkpoint.
        files = sqlite_bytes(url)
        main = Path(str(make_url(url).database)).name
        assert {main, main + "-wal", main.replace(".db", "-audit.db")} <= set(files)
        assert_absent(files)
        async with database.unit_of_work() as session:
            await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        assert_absent(sqlite_bytes(url))
    else:
        dumps = await postgres_dump(database)
        assert {"resources", "resource_versions", "audit_log", "search_strings"} <= set(dumps)
        assert dumps["resource_versions"]
        assert_absent({name: dump.encode() for name, dump in dumps.items()})
        # The audit trail is in the same PostgreSQL database (dumped above), reached through a
        # pool of its own.
        assert audit_database_for(database).url == database.url
    # Nor in the service's log lines.
    assert_absent({"log": log_lines.text.encode()})


async def test_the_stored_body_is_ciphertext_under_a_key_id(phi: PhiHarness) -> None:
    created = await phi.create(patient(0))
    database: Database = phi.app.state.database
    async with database.unit_of_work() as session:
        body = (
            await session.execute(
                text("SELECT body FROM resource_versions WHERE id = :id"), {"id": created["id"]}
            )
        ).scalar_one()
    blob = bytes(body)
    kid = phi.app.state.phi.protection.keys.active_kid
    assert blob[0] == 1
    assert blob[2 : 2 + blob[1]].decode() == kid
    assert b"resourceType" not in blob
    assert b"Patient" not in blob[2 + blob[1] :]
