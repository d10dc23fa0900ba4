"""PostgreSQL ending every connection (a restart, ``pg_terminate_backend``) costs no request a 500:
a connection found dead at a transaction's first statement is replaced once."""

from __future__ import annotations

import pytest

from tests.phi.conftest import PhiHarness
from tests.platform.test_db import _end_server_connections_unseen


@pytest.fixture
def database_url(postgres_database_url: str) -> str:
    return postgres_database_url


async def test_writes_and_reads_after_the_server_ended_every_connection(
    phi: PhiHarness, database_url: str
) -> None:
    first = await phi.create({"resourceType": "Patient", "name": [{"family": "Before"}]})

    _end_server_connections_unseen(database_url)
    created = await phi.http.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": "After"}]},
        headers=phi.headers(),
    )
    _end_server_connections_unseen(database_url)
    read = await phi.http.get(f"/fhir/Patient/{first['id']}", headers=phi.headers())
    _end_server_connections_unseen(database_url)
    updated = await phi.http.put(
        f"/fhir/Patient/{first['id']}",
        json={"resourceType": "Patient", "id": first["id"], "name": [{"family": "Again"}]},
        headers=phi.headers(),
    )
    _end_server_connections_unseen(database_url)
    searched = await phi.http.get("/fhir/Patient?family=After", headers=phi.headers())

    assert created.status_code == 201, created.text
    assert read.status_code == 200, read.text
    assert read.json()["name"] == [{"family": "Before"}]
    assert updated.status_code == 200, updated.text
    assert searched.status_code == 200, searched.text
    assert [e["resource"]["id"] for e in searched.json()["entry"]] == [created.json()["id"]]
