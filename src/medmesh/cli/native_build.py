"""Build every service's compiled module group (:mod:`medmesh.platform.native`).

``python -m medmesh.cli.native_build`` builds each group whose build is missing or no longer
matches its sources (``--force``: every group); a current group is left as it is. A group
that cannot be built (no compiler) is reported and left out, its sources running in its place
(``--strict``: exit 1 instead).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import typer

from medmesh.platform.native import NATIVE_ROOT, build, build_problem


def groups() -> dict[str, tuple[str, ...]]:
    """Every service's compiled group: its name and its modules."""
    from medmesh.phi import NATIVE_GROUP, NATIVE_MODULES

    return {NATIVE_GROUP: NATIVE_MODULES}


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
