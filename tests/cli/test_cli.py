"""The ``medmesh`` command: audit verification, key rotation, bootstrap and OpenAPI documents."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from medmesh.cli import app
from medmesh.platform.audit import audit_database_for
from tests.auth.conftest import AuthHarness, header_of, light_settings, run_auth
from tests.cli.commands import invoke

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def auth(database_url: str, tmp_path: Path) -> AsyncIterator[AuthHarness]:
    async with run_auth(light_settings(database_url, tmp_path)) as harness:
        yield harness


def _env(auth: AuthHarness) -> dict[str, str]:
    return {
        "MEDMESH_AUTH_DATABASE_URL": auth.settings.effective_database_url,
        "MEDMESH_AUTH_VAR_DIR": str(auth.settings.var_dir),
        "MEDMESH_AUTH_KEY_ENCRYPTION_KEYS": auth.settings.key_encryption_keys,
    }


async def test_audit_verify_passes_then_detects_an_edited_row(auth: AuthHarness) -> None:
    await auth.token()
    await auth.login()
    await auth.login(password="wrong password")
    await auth.create_user("audited.user", roles=["auditor"])
    ok = await invoke(["audit", "verify", "auth"], _env(auth))
    assert ok.exit_code == 0, ok.output
    assert "audit trail intact" in ok.output

    events = await auth.audit_events(action="auth.login")
    target = events[0]["seq"]
    audit_db = audit_database_for(auth.database)
    async with audit_db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_log SET outcome = 'failure' WHERE seq = :seq"), {"seq": target}
        )
    if audit_db is not auth.database:
        await audit_db.dispose()
    broken = await invoke(["audit", "verify", "auth"], _env(auth))
    assert broken.exit_code == 1, broken.output
    assert f"BROKEN at record {target}" in broken.output


async def test_rotate_keys_command(auth: AuthHarness) -> None:
    old_kid = header_of(await auth.access_token())["kid"]
    result = await invoke(["admin", "rotate-keys"], _env(auth))
    assert result.exit_code == 0, result.output
    new_kid = result.output.strip().rsplit(" ", 1)[-1]
    assert new_kid != old_kid
    listed = (await auth.http.get("/admin/keys", headers=await auth.admin_headers())).json()
    assert {k["kid"]: k["status"] for k in listed} == {new_kid: "active", old_kid: "retired"}
    # The running app follows the ring on its next reload (every 30 s in housekeeping).
    async with auth.database.sessionmaker() as session:
        await auth.app.state.auth.keys.load(session, create_if_missing=False)
    assert header_of(await auth.access_token())["kid"] == new_kid
    jwks = (await auth.http.get("/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {new_kid, old_kid}
    events = await auth.audit_events(action="auth.key_rotated")
    assert events[-1]["actor"] == "cli"
    assert events[-1]["resource_id"] == new_kid
    verify = await invoke(["audit", "verify", "auth"], _env(auth))
    assert verify.exit_code == 0, verify.output


async def test_bootstrap_command_is_idempotent(tmp_path: Path) -> None:
    env = {"MEDMESH_AUTH_VAR_DIR": str(tmp_path), "MEDMESH_AUTH_DATABASE_URL": ""}
    migrated = await invoke(["migrate", "auth"], env)
    assert migrated.exit_code == 0, migrated.output
    first = await invoke(["admin", "bootstrap"], env)
    assert first.exit_code == 0, first.output
    assert "admin user admin password:" in first.output
    assert "client medmesh-cli secret: mmcs_" in first.output
    second = await invoke(["admin", "bootstrap"], env)
    assert second.exit_code == 0
    assert "nothing to do" in second.output


def test_openapi_check_fails_when_stale(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["openapi", "--out", str(tmp_path)]).exit_code == 0
    document = tmp_path / "auth.json"
    assert runner.invoke(app, ["openapi", "--check", "--out", str(tmp_path)]).exit_code == 0
    spec = json.loads(document.read_text())
    spec["info"]["title"] = "something else"
    document.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    stale = runner.invoke(app, ["openapi", "--check", "--out", str(tmp_path)])
    assert stale.exit_code == 1
    assert "stale OpenAPI documents" in stale.output
    document.unlink()
    assert runner.invoke(app, ["openapi", "--check", "--out", str(tmp_path)]).exit_code == 1


def test_committed_openapi_document_is_current() -> None:
    result = CliRunner().invoke(
        app, ["openapi", "--check", "--out", str(REPO / "docs" / "openapi")]
    )
    assert result.exit_code == 0, result.output + " (run `make openapi`)"
    spec = json.loads((REPO / "docs" / "openapi" / "auth.json").read_text())
    assert "/oauth/token" in spec["paths"]


def test_unknown_service_is_refused() -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "nope"])
    assert result.exit_code != 0


def test_committed_openapi_documents_do_not_depend_on_the_issuer_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDMESH_ISSUER", "https://auth.hospital.example")
    result = CliRunner().invoke(
        app, ["openapi", "--check", "--out", str(REPO / "docs" / "openapi")]
    )
    assert result.exit_code == 0, result.output
