"""`medmesh synth --load`: the patients land in a real phi-service, served on a local port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
from typer.testing import CliRunner

from medmesh.cli import app
from medmesh.platform.testing import TokenFactory


async def synth(*args: str) -> tuple[int, str]:
    # The command runs its own event loop (asyncio.run), so it runs off this test's loop.
    result = await asyncio.to_thread(CliRunner().invoke, app, ["synth", *args])
    return result.exit_code, result.output


def service_token(tokens: TokenFactory, scope: str = "system/*.crus") -> str:
    return tokens.token(
        scope, audience="medmesh-phi", sub="svc-synthetic", client_id="svc-synthetic"
    )


async def total(url: str, tokens: TokenFactory, resource: str) -> int:
    headers = {"Authorization": "Bearer " + tokens.token("system/*.rs", audience="medmesh-phi")}
    async with httpx.AsyncClient(base_url=url + "/fhir", headers=headers, timeout=30) as fhir:
        answer = await fhir.get(resource, params={"_summary": "count"})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


async def test_synth_writes_the_files_and_loads_the_same_patients_into_phi(
    served_phi_url: str, token_factory: TokenFactory, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, output = await synth(
        "-n", "6", "--seed", "5", "--years", "2", "--reference-date", "2026-01-01",
        "--format", "bundle", "--out", str(out), "--no-report",
        "--load", served_phi_url + "/fhir", "--token", service_token(token_factory),
    )  # fmt: skip
    assert code == 0, output
    assert "loaded 6 patients" in output
    assert await total(served_phi_url, token_factory, "Patient") == 6
    written = orjson.loads((out / "manifest.json").read_bytes())["counts"]
    assert await total(served_phi_url, token_factory, "Encounter") == written["Encounter"]


async def test_a_refused_load_is_one_line_and_exit_1(
    served_phi_url: str, token_factory: TokenFactory
) -> None:
    code, output = await synth(
        "-n", "2", "--seed", "5", "--load", served_phi_url + "/fhir",
        "--token", service_token(token_factory, scope="system/Observation.r"),
    )  # fmt: skip
    assert code == 1, output
    assert "refused the load" in output
    assert "Traceback" not in output


async def test_a_load_without_credentials_is_a_usage_error(tmp_path: Path) -> None:
    code, output = await synth(
        "-n", "2", "--load", "http://127.0.0.1:9/fhir", "--var-dir", str(tmp_path)
    )
    assert code == 2, output
    assert "--token" in output
