"""``medmesh admin add-backend-client``: an operator registers a SMART backend from a shell."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from typer.testing import CliRunner, Result

from medmesh.cli import app
from tests.auth.clients.test_assertions import BackendKey, token_with
from tests.auth.conftest import AuthHarness


def _env(auth: AuthHarness) -> dict[str, str]:
    return {
        "MEDMESH_AUTH_DATABASE_URL": auth.settings.effective_database_url,
        "MEDMESH_AUTH_VAR_DIR": str(auth.settings.var_dir),
        "MEDMESH_AUTH_KEY_ENCRYPTION_KEYS": auth.settings.key_encryption_keys,
    }


async def invoke(args: list[str], auth: AuthHarness) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, args, env=_env(auth))


async def test_a_backend_registered_from_the_cli_signs_in(
    auth: AuthHarness, tmp_path: Path
) -> None:
    key = BackendKey.ec()
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps({"keys": [key.public_jwk()]}))
    result = await invoke(
        [
            "admin",
            "add-backend-client",
            "lab-feed",
            "--jwks-file",
            str(jwks),
            "--scope",
            "system/Observation.rs",
        ],
        auth,
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "backend client lab-feed registered (private_key_jwt)"
    response = await token_with(auth, key.assertion("lab-feed"))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Observation.rs"
    events = await auth.audit_events(action="auth.client_created")
    assert events[-1]["actor"] == "cli"
    assert events[-1]["resource_id"] == "lab-feed"
    again = await invoke(
        ["admin", "add-backend-client", "lab-feed", "--jwks-file", str(jwks)], auth
    )
    assert again.exit_code == 1
    assert "not registered: a client with this client_id exists" in again.output


async def test_the_cli_refuses_a_backend_without_exactly_one_key_source(
    auth: AuthHarness, tmp_path: Path
) -> None:
    before = await auth.count("clients")
    neither = await invoke(["admin", "add-backend-client", "lab-feed"], auth)
    assert neither.exit_code == 2
    insecure = await invoke(
        ["admin", "add-backend-client", "lab-feed", "--jwks-uri", "http://keys.example/j"], auth
    )
    assert insecure.exit_code == 2
    assert "https" in insecure.output
    assert await auth.count("clients") == before
