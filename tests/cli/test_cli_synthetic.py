"""The ``medmesh`` command for synthetic-phi-service: migrate, serve's app, audit verify, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medmesh.cli import SERVICES, app, openapi_document
from medmesh.platform.testing import TokenFactory
from tests.cli.commands import invoke, verify_then_tamper
from tests.synthetic.api.conftest import run_synthetic, synthetic_settings_for


def test_synthetic_is_a_service_of_the_cli_and_documents_its_api() -> None:
    assert list(SERVICES)[:3] == ["auth", "phi", "synthetic"]
    document = openapi_document("synthetic")
    assert document["info"]["title"] == "medmesh synthetic-phi-service"
    assert {"/v1/generate", "/v1/realism", "/v1/jobs", "/v1/jobs/{job_id}/cancel"} <= set(
        document["paths"]
    )
    assert "202" in document["paths"]["/v1/jobs"]["post"]["responses"]


async def test_migrate_synthetic_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"MEDMESH_SYNTHETIC_VAR_DIR": str(tmp_path), "MEDMESH_SYNTHETIC_DATABASE_URL": ""}
    for _ in range(2):
        result = await invoke(["migrate", "synthetic"], env)
        assert result.exit_code == 0, result.output
        assert "synthetic: database is at the latest revision" in result.output
    assert (tmp_path / "synthetic.db").is_file()


@pytest.mark.postgres
async def test_audit_verify_synthetic_detects_an_edited_record(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    settings = synthetic_settings_for(database_url, tmp_path)
    async with run_synthetic(settings, token_factory) as synthetic:
        for seed in (1, 2):
            answer = await synthetic.http.post(
                "/v1/generate", json={"size": 1, "seed": seed}, headers=synthetic.headers()
            )
            assert answer.status_code == 200
    env = {
        "MEDMESH_SYNTHETIC_DATABASE_URL": settings.effective_database_url,
        "MEDMESH_SYNTHETIC_VAR_DIR": str(tmp_path),
    }
    ok = await verify_then_tamper("synthetic", settings.effective_database_url, env)
    assert ok.startswith("synthetic: audit trail intact (2 records; ")


def test_up_takes_the_number_of_synthetic_patients() -> None:
    result = CliRunner().invoke(app, ["up", "--help"])
    assert result.exit_code == 0
    assert "--synthetic-patients" in result.output
    refused = CliRunner().invoke(app, ["up", "--synthetic-patients", "-1"])
    assert refused.exit_code == 2
