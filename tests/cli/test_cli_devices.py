"""The ``medmesh`` command for the medical-device service: migrate, audit verify, OpenAPI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medmesh.cli import SERVICES, openapi_document
from medmesh.platform.testing import TokenFactory
from tests.cli.commands import invoke, verify_then_tamper
from tests.devices.conftest import devices_settings_for, run_devices

REPO = Path(__file__).resolve().parents[2]


def test_devices_is_a_service_of_the_cli_and_documents_its_api() -> None:
    assert list(SERVICES) == ["auth", "phi", "synthetic", "payments", "devices"]
    document = openapi_document("devices")
    assert document["info"]["title"] == "medmesh medical-device service"
    assert {
        "/v1/devices",
        "/v1/devices/{device_id}",
        "/v1/devices/{device_id}/keys",
        "/v1/devices/{device_id}/assignments",
        "/v1/devices/{device_id}/readings",
        "/v1/readings",
        "/v1/templates",
        "/v1/alert-rules",
        "/v1/alerts",
    } <= set(document["paths"])
    committed = json.loads((REPO / "docs" / "openapi" / "devices.json").read_text())
    assert committed == json.loads(json.dumps(document))


async def test_migrate_devices_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"MEDMESH_DEVICES_VAR_DIR": str(tmp_path), "MEDMESH_DEVICES_DATABASE_URL": ""}
    for _ in range(2):
        result = await invoke(["migrate", "devices"], env)
        assert result.exit_code == 0, result.output
        assert result.output == "devices: database is at the latest revision\n"
    assert (tmp_path / "devices.db").is_file()


async def test_serve_refuses_an_unknown_service() -> None:
    result = await invoke(["serve", "printer"])
    assert result.exit_code == 2
    # typer draws the message in a box: its borders and line breaks are left out.
    message = " ".join(re.sub(r"[\u2500-\u257f]", " ", result.output).split())
    assert "unknown service 'printer'; known: auth, phi, synthetic, payments, devices" in message


@pytest.mark.postgres
async def test_audit_verify_devices_detects_an_edited_record(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    settings = devices_settings_for(database_url, tmp_path)
    async with run_devices(settings, token_factory) as devices:
        device = await devices.register()
        await devices.ok("POST", f"/v1/devices/{device['id']}/keys", 201)
    env = {
        "MEDMESH_DEVICES_DATABASE_URL": settings.effective_database_url,
        "MEDMESH_DEVICES_VAR_DIR": str(tmp_path),
    }
    await verify_then_tamper("devices", settings.effective_database_url, env)
