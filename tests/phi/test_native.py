"""phi's modules compiled with mypyc (medmesh.platform.native): the same answers as their
sources, taken only when they are current, and refused otherwise.

The suite itself imports the sources (tests/conftest.py sets ``MEDMESH_NATIVE=off`` unless it
is set: coverage is measured on them); .ci/run runs phi's tests a second time with
``MEDMESH_NATIVE=on``. These tests need the build (``make native``, which ``make test`` runs):
without it they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from medmesh.phi import NATIVE_GROUP, NATIVE_MODULES
from medmesh.platform import native
from tests.phi import native_probe
from tests.phi.fhir.r4.conformance import conformance_resources

ROOT = Path(__file__).resolve().parents[2]


def _python(code_or_args: list[str], *, native_setting: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != native.SETTING}  # noqa: TID251
    if native_setting is not None:
        env[native.SETTING] = native_setting
    done = subprocess.run(
        [sys.executable, *code_or_args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_compiled_modules_answer_as_their_sources(tmp_path: Path) -> None:
    compiled, plain = tmp_path / "compiled.json", tmp_path / "plain.json"
    _python(["-m", "tests.phi.native_probe", str(compiled)], native_setting=None)
    _python(["-m", "tests.phi.native_probe", str(plain)], native_setting="off")
    with_native, without = orjson.loads(compiled.read_bytes()), orjson.loads(plain.read_bytes())

    assert with_native["native"] == [True, "compiled"], "run `make native` first"
    assert with_native["rules"].endswith(".so")
    assert without["native"] == [False, "MEDMESH_NATIVE=off"]
    assert without["rules"].endswith("rules.py")
    answers = with_native["answers"]
    assert len(answers) > len(conformance_resources()) + native_probe.MUTATIONS / 2
    # Both accepted and refused resources, stored ones with index rows of every kind.
    assert sum("refused" in a for a in answers) > 1000
    assert sum("rows" in a for a in answers) > 4000
    kinds = {kind for a in answers if "rows" in a for kind, rows in a["rows"].items() if rows}
    assert kinds == {"strings", "lookup", "tokens", "dates", "references"}
    assert all(a["again"] for a in answers if "again" in a)
    differing = [c["name"] for c, p in zip(answers, without["answers"], strict=True) if c != p]
    assert differing == []
    bundles = with_native["bundles"]
    assert sum("refused" in b for b in bundles) > 10
    entries = [e for b in bundles for e in b.get("entries", [])]
    assert sum(e[-1] is None for e in entries) > 1000  # entries read
    assert sum(e[-1] is not None for e in entries) > 10  # a batch's entries refused
    differing = [c["name"] for c, p in zip(bundles, without["bundles"], strict=True) if c != p]
    assert differing == []


_STATUS = """
import sys
from pathlib import Path
from medmesh.platform import native
native.NATIVE_ROOT = Path(sys.argv[1])
import medmesh.phi
import medmesh.phi.fhir.r4.rules as rules
status = native.status(medmesh.phi.NATIVE_GROUP)
print(status.active, status.reason, rules.__file__, sep="|")
"""


@pytest.fixture
def build_copy(tmp_path: Path) -> Path:
    """A copy of the build, in a folder of its own."""
    built = native.NATIVE_ROOT / NATIVE_GROUP
    assert native.build_problem(NATIVE_GROUP, NATIVE_MODULES) is None, "run `make native` first"
    shutil.copytree(built, tmp_path / NATIVE_GROUP)
    return tmp_path


def _status(root: Path, setting: str | None = None) -> list[str]:
    return _python(["-c", _STATUS, str(root)], native_setting=setting).strip().split("|")


def test_a_current_build_is_imported_in_place_of_the_sources(build_copy: Path) -> None:
    active, reason, rules = _status(build_copy)
    assert (active, reason) == ("True", "compiled")
    assert rules.startswith(str(build_copy / NATIVE_GROUP))


def test_a_build_of_other_sources_is_refused_and_the_sources_imported(build_copy: Path) -> None:
    manifest = build_copy / NATIVE_GROUP / native.MANIFEST
    content = json.loads(manifest.read_text())
    content["modules"]["medmesh.phi.search.extract"] = "0" * 64
    manifest.write_text(json.dumps(content))

    active, reason, rules = _status(build_copy)

    assert (active, reason) == (
        "False",
        "sources changed since the build: medmesh.phi.search.extract",
    )
    assert rules == str(ROOT / "src/medmesh/phi/fhir/r4/rules.py")


def test_a_build_for_another_python_is_refused(build_copy: Path) -> None:
    manifest = build_copy / NATIVE_GROUP / native.MANIFEST
    content = json.loads(manifest.read_text())
    content["ext_suffix"] = ".cpython-399-x86_64-linux-gnu.so"
    manifest.write_text(json.dumps(content))

    assert _status(build_copy)[:2] == ["False", "built for another Python"]


def test_a_build_with_a_file_missing_is_refused(build_copy: Path) -> None:
    next((build_copy / NATIVE_GROUP).glob("*__mypyc*.so")).unlink()

    assert _status(build_copy)[:2] == [
        "False",
        "not built (python -m medmesh.cli.native_build)",
    ]


def test_the_setting_off_imports_the_sources_even_with_a_current_build(build_copy: Path) -> None:
    assert _status(build_copy, "off")[:2] == ["False", "MEDMESH_NATIVE=off"]


def test_this_run_imports_what_its_setting_asks_for() -> None:
    """The suite (MEDMESH_NATIVE=off, its default) measures the sources; .ci/run's second pass
    (MEDMESH_NATIVE=on) must be running the compiled modules, not the sources again."""
    import medmesh.phi.search.extract as extract

    status = native.status(NATIVE_GROUP)
    assert status is not None
    if os.environ.get(native.SETTING) == "off":  # noqa: TID251
        assert (status.active, status.reason) == (False, "MEDMESH_NATIVE=off")
        assert extract.__file__.endswith("extract.py")
    else:
        assert (status.active, status.reason) == (True, "compiled")
        assert extract.__file__.endswith(".so")
