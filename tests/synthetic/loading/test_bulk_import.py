"""The loader with phi's ``$import``: a run's NDJSON files, served over HTTP, pulled by a real
phi-service app that offers the operation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app as create_phi
from medmesh.phi.migrations import upgrade as upgrade_phi
from medmesh.platform.crypto import KeyRing
from medmesh.platform.service_client import ServiceClient
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, serve_app
from medmesh.platform.tokens import TokenVerifier
from medmesh.synthetic.loading import LoadCancelled, LoadRefused, NdjsonInput, load_patients
from medmesh.synthetic.loading.bulk_import import offers_import
from medmesh.synthetic.loading.summary import LoadFailure
from medmesh.synthetic.runner import run_generation
from tests.synthetic.live_phi import BLIND_KEY, ISSUER
from tests.synthetic.loading.test_loader import count, generated_counts, options, target


@pytest.fixture
async def exports(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A folder served over HTTP (what phi pulls from) and its URL."""
    folder = tmp_path / "exports"
    folder.mkdir()
    app = Starlette()
    app.mount("/exports", StaticFiles(directory=folder))
    async with serve_app(app) as base:
        yield f"{base}/exports/", folder


@pytest.fixture
async def phi_url(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
    exports: tuple[str, Path],
) -> AsyncIterator[str]:
    """phi-service importing from ``exports`` only, trusting ``token_factory``'s tokens."""
    settings = PhiSettings(
        database_url=database_url,
        var_dir=tmp_path,
        issuer=ISSUER,
        encryption_keys=KeyRing.generate().to_setting(),
        blind_index_key=BLIND_KEY,
        import_url_prefixes=exports[0],
    )
    await database_templates.migrate(settings.effective_database_url, upgrade_phi)
    app = create_phi(settings)
    app.state.verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=token_factory.jwks())
    async with app.router.lifespan_context(app), serve_app(app) as url:
        yield url


def _inputs(base: str, folder: Path) -> list[NdjsonInput]:
    files = sorted((folder / "ndjson").glob("*.ndjson"))
    return [NdjsonInput(f.stem, f"{base}ndjson/{f.name}") for f in files]


@pytest.mark.postgres
async def test_a_run_is_loaded_through_import_and_a_second_load_adds_no_copies(
    phi_url: str, token_factory: TokenFactory, exports: tuple[str, Path]
) -> None:
    base, folder = exports
    run = options(4)
    run_generation(run, folder, formats=frozenset({"ndjson"}))
    inputs = _inputs(base, folder)
    lines = sum(
        len((folder / "ndjson" / f"{i.resource_type}.ndjson").read_bytes().splitlines())
        for i in inputs
    )
    progress: list[int] = []

    summary = await load_patients(
        target(phi_url, token_factory), run, ndjson=inputs, on_progress=progress.append
    )

    _, generated = generated_counts(run)
    assert (summary.patients, summary.patients_loaded, summary.patients_failed) == (4, 4, 0)
    assert summary.resources_loaded == lines
    assert summary.bundles_posted == 0
    assert progress == [4]
    assert await count(phi_url, token_factory, "Patient") == 4
    assert await count(phi_url, token_factory, "Observation") == generated["Observation"]

    again = await load_patients(target(phi_url, token_factory), run, ndjson=inputs)

    assert (again.patients_loaded, again.resources_loaded) == (4, lines)
    assert await count(phi_url, token_factory, "Patient") == 4  # new versions, not copies


async def test_a_rejected_patient_line_is_a_failed_patient(
    phi_url: str, token_factory: TokenFactory, exports: tuple[str, Path]
) -> None:
    base, folder = exports
    patients = [
        {"resourceType": "Patient", "id": "ok", "gender": "female"},
        {"resourceType": "Patient", "id": "bad", "gender": "sometimes"},
    ]
    (folder / "Patient.ndjson").write_bytes(b"\n".join(orjson.dumps(p) for p in patients))

    summary = await load_patients(
        target(phi_url, token_factory),
        options(1),
        ndjson=[NdjsonInput("Patient", base + "Patient.ndjson")],
    )

    assert (summary.patients, summary.patients_loaded, summary.patients_failed) == (2, 1, 1)
    assert summary.failures == [
        LoadFailure(1, 1, 400, "Patient.gender: not a code of its required value set")
    ]


async def test_a_kick_off_phi_refuses_refuses_the_load(
    phi_url: str, token_factory: TokenFactory
) -> None:
    with pytest.raises(LoadRefused) as refused:
        await load_patients(
            target(phi_url, token_factory),
            options(1),
            ndjson=[NdjsonInput("Patient", "https://elsewhere.example/Patient.ndjson")],
        )

    assert refused.value.message == (
        "the $import kick-off was refused: 400 Parameters.parameter[1]: url is not under a "
        "location this server imports from (MEDMESH_PHI_IMPORT_URL_PREFIXES)"
    )


async def test_an_unreadable_file_fails_the_load_with_phis_reason(
    phi_url: str, token_factory: TokenFactory, exports: tuple[str, Path]
) -> None:
    with pytest.raises(LoadRefused) as refused:
        await load_patients(
            target(phi_url, token_factory),
            options(1),
            ndjson=[NdjsonInput("Patient", exports[0] + "missing.ndjson")],
        )

    assert refused.value.message == (
        "the $import job failed: input 1 (Patient) could not be read: HTTP 404"
    )


async def test_only_a_server_listing_the_operation_offers_it(
    phi_url: str, token_factory: TokenFactory, exports: tuple[str, Path]
) -> None:
    async with ServiceClient(phi_url + "/fhir") as phi:
        assert await offers_import(phi) is True
    # A server without a CapabilityStatement (the file server: 404) does not.
    async with ServiceClient(exports[0]) as files:
        assert await offers_import(files) is False


async def test_a_cancelled_load_stops_waiting_and_phi_keeps_what_its_job_stores(
    phi_url: str, token_factory: TokenFactory, exports: tuple[str, Path]
) -> None:
    base, folder = exports
    (folder / "Patient.ndjson").write_bytes(orjson.dumps({"resourceType": "Patient", "id": "p"}))

    with pytest.raises(LoadCancelled) as cancelled:
        await load_patients(
            target(phi_url, token_factory),
            options(1),
            ndjson=[NdjsonInput("Patient", base + "Patient.ndjson")],
            is_cancelled=lambda: True,
        )

    assert cancelled.value.summary.patients_loaded == 0
    async with ServiceClient(phi_url + "/fhir") as phi:
        headers = {
            "Authorization": "Bearer " + token_factory.token("system/*.rs", audience="medmesh-phi")
        }
        for _ in range(600):
            if (await phi.get("Patient/p", headers=headers)).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await phi.get("Patient/p", headers=headers)).status_code == 200
