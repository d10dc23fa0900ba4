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
import shutil
import sys
import sysconfig
import tempfile
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
    #: False when the setting turned the build off (its sources run by choice).
    wanted: bool = True


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
    status, manifest = _decide(group, modules)
    if manifest is not None:
        folder = NATIVE_ROOT / group
        files = {name: folder / file for name, file in manifest["files"].items()}
        sys.meta_path.insert(0, _CompiledFinder(files))
    _installed[group] = status
    return status


def status(group: str) -> NativeStatus | None:
    """What :func:`install` decided for ``group`` in this process (None: not asked)."""
    return _installed.get(group)


def _decide(group: str, modules: Sequence[str]) -> tuple[NativeStatus, dict[str, Any] | None]:
    """The status of ``group`` here, and its manifest when its build is to be used."""
    # Read from the environment: the hook goes in at import, before any settings exist.
    setting = os.environ.get(SETTING, "")  # noqa: TID251
    if setting.strip().lower() in {"off", "0", "false", "no"}:
        return NativeStatus(group, False, f"{SETTING}=off", wanted=False), None
    manifest, problem = _checked(group, modules)
    if problem is not None:
        return NativeStatus(group, False, problem), None
    already = [m for m in modules if m in sys.modules]
    if already:
        return NativeStatus(group, False, f"imported before the hook: {', '.join(already)}"), None
    return NativeStatus(group, True, "compiled"), manifest


def build_problem(group: str, modules: Sequence[str]) -> str | None:
    """Why ``group``'s build cannot serve ``modules`` as their sources are now (None: it can)."""
    return _checked(group, modules)[1]


def _checked(group: str, modules: Sequence[str]) -> tuple[dict[str, Any] | None, str | None]:
    """``group``'s manifest, and why its build cannot serve ``modules`` (None: it can)."""
    manifest = _manifest(NATIVE_ROOT / group)
    if manifest is None:
        return None, "not built (python -m medmesh.cli.native_build)"
    if manifest.get("ext_suffix") != sysconfig.get_config_var("EXT_SUFFIX"):
        return manifest, "built for another Python"
    if sorted(manifest.get("modules", {})) != sorted(modules):
        return manifest, "built from another list of modules"
    changed = [m for m in modules if manifest["modules"][m] != source_digest(m)]
    if changed:
        return manifest, f"sources changed since the build: {', '.join(changed)}"
    return manifest, None


def build(group: str, modules: Sequence[str], *, quiet: bool = True) -> Path:
    """Compile ``modules`` as ``group`` with mypyc and put them, with their manifest, in place
    of any earlier build of it; the group's folder. Needs mypy (mypyc), setuptools and a C
    compiler, which the dev install and the image's build stage have; the service needs none
    of them at run time."""
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    NATIVE_ROOT.mkdir(parents=True, exist_ok=True)
    digests = {m: source_digest(m) for m in modules}
    with tempfile.TemporaryDirectory(prefix=f"{group}-", dir=NATIVE_ROOT) as scratch:
        work = Path(scratch)
        out = work / "lib"
        relative = [str(source_path(m).relative_to(SOURCE_ROOT)) for m in modules]
        cwd = Path.cwd()
        # mypy's cache beside the builds, not in the source tree
        os.environ.setdefault("MYPY_CACHE_DIR", str(NATIVE_ROOT / ".mypy_cache"))  # noqa: TID251
        os.chdir(SOURCE_ROOT)  # mypyc names the modules by their paths from here
        try:
            extensions = mypycify(
                relative, opt_level="3", target_dir=str(work / "c"), group_name=group
            )
            dist = Distribution({"name": group, "ext_modules": extensions})
            dist.script_name = "native_build"
            dist.script_args = [
                *(["--quiet"] if quiet else []),
                "build_ext",
                "--build-lib",
                str(out),
                "--build-temp",
                str(work / "o"),
            ]
            dist.parse_command_line()
            dist.run_commands()
        finally:
            os.chdir(cwd)
        files = {
            ".".join((*path.relative_to(out).parts[:-1], path.name.split(".")[0])): str(
                path.relative_to(out)
            )
            for path in sorted(out.rglob("*.so"))
        }
        missing = [m for m in modules if m not in files]
        if missing:
            raise RuntimeError(f"mypyc built no extension for {', '.join(missing)}")
        manifest = {
            "group": group,
            "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
            "python": sys.version.split()[0],
            "modules": digests,
            "files": files,
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        target = NATIVE_ROOT / group
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


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
