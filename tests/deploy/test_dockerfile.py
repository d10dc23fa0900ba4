"""deploy/Dockerfile builds any service's image the way the issue asks (checked offline)."""

from __future__ import annotations

import re

from tests.deploy.tools import DEPLOY, ROOT, find_tool, run

DOCKERFILE = DEPLOY / "Dockerfile"


def stages() -> dict[str, list[str]]:
    """Instruction lines (continuations joined) of each named build stage."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            match = re.search(r"\bAS\s+(\S+)", line, re.IGNORECASE)
            assert match, f"unnamed stage: {line}"
            current = result.setdefault(match.group(1), [])
        current.append(line)
    return result


def test_hadolint_passes() -> None:
    result = run(find_tool("hadolint"), DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_dependencies_are_installed_from_the_lock_before_the_code_is_copied() -> None:
    builder = stages()["builder"]
    lock = next(i for i, s in enumerate(builder) if s.startswith("COPY pyproject.toml uv.lock"))
    deps = next(i for i, s in enumerate(builder) if "--no-install-project" in s)
    code = next(i for i, s in enumerate(builder) if s.startswith("COPY src"))
    assert lock < deps < code
    assert "--frozen" in builder[deps]
    assert '--extra "${SERVICE}"' in builder[deps]
    assert any("UV_COMPILE_BYTECODE=1" in s for s in builder)


def test_the_runtime_stage_is_minimal_and_unprivileged() -> None:
    all_stages = stages()
    assert list(all_stages)[-1] == "runtime"
    runtime = all_stages["runtime"]
    text = "\n".join(runtime)
    for build_tool in ("apt-get", "gcc", "build-essential", "/uv ", "pip install", "uv sync"):
        assert build_tool not in text
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    user = next(s for s in runtime if s.startswith("USER "))
    assert user.split()[1].split(":")[0] not in {"0", "root"}
    assert "PYTHONDONTWRITEBYTECODE=1" in text


def test_the_healthcheck_asks_healthz_with_python() -> None:
    (healthcheck,) = [s for s in stages()["runtime"] if s.startswith("HEALTHCHECK")]
    assert "urllib.request" in healthcheck
    assert "/healthz" in healthcheck


def test_dockerignore_lets_in_only_what_the_build_needs() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "src"}


def test_phis_compiled_modules_are_built_apart_and_copied_where_the_venv_has_medmesh() -> None:
    all_stages = stages()
    native = "\n".join(all_stages["native"])
    assert all_stages["native"][0].startswith("FROM builder AS native")
    assert "python -m medmesh.cli.native_build --strict" in native
    assert "UV_PROJECT_ENVIRONMENT=/opt/build" in native  # the dev tools stay out of /opt/venv
    python = re.search(r"ARG PYTHON_IMAGE=python:(\d+\.\d+)\.", DOCKERFILE.read_text())
    assert python is not None
    site = f"/opt/venv/lib/python{python.group(1)}/site-packages/medmesh/_native"
    assert f"COPY --from=native /src/src/medmesh/_native {site}" in all_stages["runtime"]
    assert not any("gcc" in line for line in all_stages["runtime"])
