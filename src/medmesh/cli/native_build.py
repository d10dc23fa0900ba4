"""Build the compiled module groups of :mod:`medmesh.platform.native` with mypyc.

``python -m medmesh.cli.native_build`` builds each group whose build is missing or no
longer matches its sources (``--force``: every group), into ``medmesh/_native/<group>`` with
its manifest; a current group is left as it is. A group that cannot be built (no compiler)
is reported and left out, the sources running in its place (``--strict``: exit 1 instead). It needs mypy (mypyc), setuptools and a C
compiler, which the dev install and the image's build stage have; the service needs none of
them at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

import typer

from medmesh.platform.native import (
    MANIFEST,
    NATIVE_ROOT,
    SOURCE_ROOT,
    build_problem,
    source_digest,
    source_path,
)


def groups() -> dict[str, tuple[str, ...]]:
    """Every service's compiled group: its name and its modules."""
    from medmesh.phi import NATIVE_GROUP, NATIVE_MODULES

    return {NATIVE_GROUP: NATIVE_MODULES}


def build(group: str, modules: Sequence[str], *, quiet: bool = True) -> Path:
    """Compile ``modules`` as ``group`` and put them, with their manifest, in place of any
    earlier build of it; the group's folder."""
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="build every group again")
    parser.add_argument("--verbose", action="store_true", help="show the compiler's output")
    parser.add_argument("--strict", action="store_true", help="fail when a group cannot be built")
    args = parser.parse_args(argv)
    for group, modules in groups().items():
        problem = build_problem(group, modules)
        if problem is None and not args.force:
            typer.echo(f"native: {group} is current")
            continue
        typer.echo(f"native: building {group} ({problem or 'forced'}): {len(modules)} modules")
        try:
            build(group, modules, quiet=not args.verbose)
        except (Exception, SystemExit) as exc:  # no compiler, no mypyc: the sources still run
            typer.echo(f"native: {group} not built ({exc!r}); its Python sources run", err=True)
            if args.strict:
                return 1
            continue
        typer.echo(f"native: {group} built in {NATIVE_ROOT / group}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
