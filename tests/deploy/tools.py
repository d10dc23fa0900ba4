"""Paths, tools and rendered manifests shared by the deploy tests."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OBSERVABILITY = DEPLOY / "observability"
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_BIN = Path(sys.executable).parent

OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
# Every service folder of the kustomize base (common/ holds namespace-wide objects).
SERVICES = sorted(p.name for p in (K8S / "base").iterdir() if p.is_dir() and p.name != "common")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def find_tool(name: str) -> Path:
    """The tool from .tools/bin (deploy/install-tools.sh), the venv or PATH.

    A missing tool fails the test: the deploy checks are never silently skipped.
    """
    for candidate in (TOOLS_BIN / name, VENV_BIN / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found in {TOOLS_BIN} or PATH: run deploy/install-tools.sh")
    return Path(found)


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text (never raises on failure)."""
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@functools.cache
def render_overlay_text(overlay: str) -> str:
    """`kustomize build` of one overlay, with the real kustomize."""
    result = run(find_tool("kustomize"), "build", K8S / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render_overlay(overlay: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render_overlay_text(overlay)) if doc]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def workloads(overlay: str) -> list[dict[str, Any]]:
    return [o for o in render_overlay(overlay) if o["kind"] in WORKLOAD_KINDS]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of one kind, by name."""
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]
