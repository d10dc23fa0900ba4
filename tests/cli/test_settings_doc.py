"""``medmesh settings-doc``: the settings reference generated from the settings classes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from medmesh.cli import SERVICES, app
from medmesh.platform.config import ServiceSettings

REPO = Path(__file__).resolve().parents[2]


def test_the_reference_names_every_setting_with_its_default_and_meaning(tmp_path: Path) -> None:
    out = tmp_path / "settings.md"
    result = CliRunner().invoke(app, ["settings-doc", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    # Cells split on " | ": a pipe inside a cell is escaped ("\|").
    cells = [line[2:-2].split(" | ") for line in text.splitlines() if line.startswith("| `")]
    rows = {row[0]: row for row in cells}
    for name, field in ServiceSettings.model_fields.items():
        row = rows[f"`MEDMESH_{name.upper()}`"]
        assert field.description is not None
        meaning = row[3]
        assert meaning.startswith(field.description.split()[0]), (name, meaning)
    for entry in SERVICES.values():
        cls = entry.settings_class()
        prefix = cls.model_config["env_prefix"]
        for name, field in cls.model_fields.items():
            if name in ServiceSettings.model_fields and field.default == (
                ServiceSettings.model_fields[name].default
            ):
                continue  # a shared setting, listed once under its shared name
            assert f"`{prefix}{name.upper()}`" in rows, name
    assert rows["`MEDMESH_PHI_MAX_BODY_BYTES`"][2] == "`16777216`"
    assert rows["`MEDMESH_AUTH_SIGNING_ALG`"][1] == "`RS256` \\| `RS384` \\| `ES256` \\| `ES384`"
    assert "`<var_dir>/<service>.db`" in rows["`MEDMESH_DATABASE_URL`"][3]


def test_check_fails_on_a_stale_or_missing_reference(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "settings.md"
    missing = runner.invoke(app, ["settings-doc", "--check", "--out", str(out)])
    assert missing.exit_code == 1
    assert "stale settings reference" in missing.output
    assert runner.invoke(app, ["settings-doc", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["settings-doc", "--check", "--out", str(out)]).exit_code == 0
    out.write_text(out.read_text().replace("`MEDMESH_PHI_MAX_COUNT`", "`MEDMESH_PHI_COUNT_CAP`"))
    stale = runner.invoke(app, ["settings-doc", "--check", "--out", str(out)])
    assert stale.exit_code == 1
    assert f"stale settings reference {out} (run `medmesh settings-doc`)" in stale.output


def test_committed_reference_is_current() -> None:
    result = CliRunner().invoke(
        app, ["settings-doc", "--check", "--out", str(REPO / "docs" / "settings.md")]
    )
    assert result.exit_code == 0, result.output + " (run `medmesh settings-doc`)"
