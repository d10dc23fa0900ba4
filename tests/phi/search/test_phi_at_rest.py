"""Names, phone numbers and identifier values never reach the database in the clear."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from medmesh.phi.search.models import INDEX_TABLES
from medmesh.platform.db import is_sqlite
from tests.phi.conftest import PhiHarness
from tests.phi.search.support import ids, patient, search

SECRETS = [
    "Quattlebaum",
    "Wolfeschlegel",
    "6175550199",
    "617-555-0199",
    "ZX-4471-QQ",
    "hush@private.example",
]


async def test_direct_identifiers_are_not_stored_in_the_clear(phi: PhiHarness) -> None:
    created = [
        await phi.create(
            patient(
                "Quattlebaum",
                "Wolfeschlegel",
                mrn="ZX-4471-QQ",
                phone="617-555-0199",
                email="hush@private.example",
                postal="02139",
            )
        ),
        await phi.create(patient("Wolfeschlegel", mrn="ZX-4471-QQ-2", phone="6175550199")),
    ]
    assert len(ids(await search(phi, "Patient?family=quattle"))) == 1
    assert len(ids(await search(phi, "Patient?phone=6175550199"))) == 2
    assert ids(await search(phi, "Patient?identifier=ZX-4471-QQ")) == [created[0]["id"]]

    url = phi.settings.effective_database_url
    database = phi.app.state.database
    if is_sqlite(url):
        async with database.unit_of_work() as session:
            await session.execute(text("PRAGMA wal_checkpoint(FULL)"))
        path = Path(url.split("///", 1)[1])
        data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for secret in SECRETS:
            assert secret.encode() not in data, secret
            assert secret.lower().encode() not in data, secret
    else:
        async with database.unit_of_work() as session:
            for table in [*INDEX_TABLES]:
                name = table.__tablename__
                dump = (
                    await session.execute(text(f"SELECT string_agg(t::text, '\n') FROM {name} t"))
                ).scalar()
                for secret in SECRETS:
                    assert secret.lower() not in (dump or "").lower(), (name, secret)
            for name in ("resources", "resource_versions"):
                dump = (
                    await session.execute(text(f"SELECT string_agg(t::text, '\n') FROM {name} t"))
                ).scalar()
                for secret in SECRETS:
                    assert secret not in (dump or ""), (name, secret)
