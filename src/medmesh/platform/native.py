"""Modules compiled to C with mypyc, used in place of their Python source when they match it.

A group of pure-computation modules (a service lists them) can be built into extension modules
by ``python -m medmesh.cli.native_build`` (``make install`` runs it). The build writes
them, with a manifest of the SHA-256 of each module's source, into ``medmesh/_native/<group>``.

:func:`install` puts an import hook in front of the others for the group's modules. It takes
the compiled group only as a whole and only when it can honour it: the setting
``MEDMESH_NATIVE`` is not ``off``, the manifest was built for this Python (its extension
suffix), and every module's source is the one compiled (else it says why and the sources are
imported as usual). The compiled modules keep the sources' names, so nothing else changes for
their callers. Decision 0049.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

#: Where the compiled groups are (one folder each).
NATIVE_ROOT = Path(__file__).resolve().parents[1] / "_native"
#: The source tree the module names resolve in (``medmesh``'s parent).
SOURCE_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "manifest.json"
#: ``MEDMESH_NATIVE=off`` imports the sources even where a current build exists.
SETTING = "MEDMESH_NATIVE"


@dataclass(frozen=True)
class NativeStatus:
    """What :func:`install` found for a group: whether its compiled modules are used, and why
    not when they are not."""

    group: str
    active: bool
    reason: str
    modules: tuple[str, ...] = ()


def source_path(module: str) -> Path:
    """The ``.py`` file of ``module`` in this source tree."""
    return SOURCE_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def source_digest(module: str) -> str:
    return hashlib.sha256(source_path(module).read_bytes()).hexdigest()


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled group's modules (and its shared library) by name."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file)


_installed: dict[str, NativeStatus] = {}


def install(group: str, modules: Sequence[str]) -> NativeStatus:
    """Use the compiled ``group`` of ``modules`` for the rest of this process, if it can be
    honoured (see the module's docstring); what was decided either way. Call it before any
    of ``modules`` is imported."""
    if group in _installed:
        return _installed[group]
    status = _decide(group, modules)
    if status.active:
        manifest = _manifest(NATIVE_ROOT / group)
        assert manifest is not None
        folder = NATIVE_ROOT / group
        files = {name: folder / file for name, file in manifest["files"].items()}
        sys.meta_path.insert(0, _CompiledFinder(files))
    _installed[group] = status
    return status


def status(group: str) -> NativeStatus | None:
    """What :func:`install` decided for ``group`` in this process (None: not asked)."""
    return _installed.get(group)


def _decide(group: str, modules: Sequence[str]) -> NativeStatus:
    # Read from the environment: the hook goes in at import, before any settings exist.
    setting = os.environ.get(SETTING, "")  # noqa: TID251
    if setting.strip().lower() in {"off", "0", "false", "no"}:
        return NativeStatus(group, False, f"{SETTING}=off")
    problem = build_problem(group, modules)
    if problem is not None:
        return NativeStatus(group, False, problem)
    already = [m for m in modules if m in sys.modules]
    if already:
        return NativeStatus(group, False, f"imported before the hook: {', '.join(already)}")
    return NativeStatus(group, True, "compiled", tuple(modules))


def build_problem(group: str, modules: Sequence[str]) -> str | None:
    """Why ``group``'s build cannot serve ``modules`` as their sources are now (None: it can)."""
    manifest = _manifest(NATIVE_ROOT / group)
    if manifest is None:
        return "not built (python -m medmesh.cli.native_build)"
    if manifest.get("ext_suffix") != sysconfig.get_config_var("EXT_SUFFIX"):
        return "built for another Python"
    if sorted(manifest.get("modules", {})) != sorted(modules):
        return "built from another list of modules"
    changed = [m for m in modules if manifest["modules"][m] != source_digest(m)]
    if changed:
        return f"sources changed since the build: {', '.join(changed)}"
    return None


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("files"), dict):
        return None
    if not all((folder / str(f)).is_file() for f in loaded["files"].values()):
        return None
    return loaded
