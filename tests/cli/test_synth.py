"""`medmesh synth`: files, the realism report, and one-line errors for bad options."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from medmesh.cli import app


def synth(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["synth", *args])
    return result.exit_code, result.output


def test_synth_writes_the_files_and_prints_the_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, output = synth(
        "-n", "25", "--seed", "42", "--format", "ndjson,csv", "--format", "bundle",
        "--out", str(out), "--reference-date", "2026-01-01", "--cohort", "diabetes:5",
    )  # fmt: skip
    assert code == 0, output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["complete"] is True
    assert manifest["seed"] == 42
    assert manifest["patients"] == 25
    assert manifest["formats"] == ["bundle", "csv", "ndjson"]
    assert (out / "ndjson" / "Patient.ndjson").read_bytes().count(b"\n") == 25
    assert (out / "csv" / "patients.csv").exists()
    assert len(list((out / "fhir").glob("patient-*.json"))) == 25
    assert "25 patients" in output
    assert "seed 42" in output
    assert "diabetes" in output  # the realism report names the conditions


def test_no_report_leaves_the_report_out(tmp_path: Path) -> None:
    code, output = synth(
        "-n", "5", "--seed", "1", "--out", str(tmp_path), "--reference-date", "2026-01-01",
        "--no-report",
    )  # fmt: skip
    assert code == 0, output
    assert "diabetes" not in output
    assert "5 patients" in output


def test_without_a_seed_a_random_one_is_chosen_and_recorded(tmp_path: Path) -> None:
    code, output = synth("-n", "2", "--out", str(tmp_path), "--no-report")
    assert code == 0, output
    seed = orjson.loads((tmp_path / "manifest.json").read_bytes())["seed"]
    assert f"seed {seed}" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "size"),
        (["-n", "10", "--cohort", "dragonpox:3"], "diabetes"),
        (["-n", "10", "--cohort", "diabetes:20"], "cohort"),
        (["-n", "10", "--seed", "-1"], "seed"),
        (["-n", "10", "--seed", str(2**63)], "seed"),
        (["-n", "10", "--seed", "abc"], "seed"),
        (["-n", "10", "--format", "xml"], "xml"),
        (["-n", "10", "--age-min", "50", "--age-max", "20"], "age"),
        (["-n", "10", "--reference-date", "yesterday"], "date"),
        (["-n", "10", "--sex", "other"], "sex"),
        (["-n", "10", "--workers", "0"], "workers"),
    ],
)
def test_bad_options_exit_2_with_a_message_and_no_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = synth(*args, "--out", str(tmp_path / "never"))
    assert code == 2, output
    assert message in output.lower()
    assert "Traceback" not in output
    assert not (tmp_path / "never").exists()
