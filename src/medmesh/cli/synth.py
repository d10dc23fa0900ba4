"""`medmesh synth`: generate synthetic patients to files (NDJSON, Bundles, CSV) with a manifest."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from medmesh.cli.services import echo as _echo

if TYPE_CHECKING:
    from rich.progress import Progress

    from medmesh.synthetic.engine import GenerationOptions
    from medmesh.synthetic.loading import PhiTarget


def _formats(values: list[str]) -> frozenset[str]:
    return frozenset(part.strip() for value in values for part in value.split(",") if part.strip())


def _options(
    size: int,
    seed: int | None,
    cohorts: list[str],
    age_min: int,
    age_max: int,
    sex: str | None,
    state: str | None,
    reference_date: str | None,
    years: int,
) -> GenerationOptions:
    from medmesh.synthetic.engine import GenerationOptions, InvalidOptions, parse_cohort

    try:
        when = date.fromisoformat(reference_date) if reference_date else datetime.now(UTC).date()
    except ValueError:
        raise typer.BadParameter(
            f"reference date {reference_date!r} is not a date (YYYY-MM-DD)"
        ) from None
    if sex not in (None, "female", "male"):
        raise typer.BadParameter(f"sex must be female or male, not {sex!r}")
    chosen_sex: Literal["female", "male"] | None = (
        "female" if sex == "female" else "male" if sex else None
    )
    parsed = []
    for text in cohorts:
        try:
            parsed.append(parse_cohort(text))
        except InvalidOptions as error:
            raise typer.BadParameter(str(error), param_hint="--cohort") from None
    try:
        return GenerationOptions(
            seed=secrets.randbelow(2**63) if seed is None else seed,
            size=size,
            age_min=age_min,
            age_max=age_max,
            sex=chosen_sex,
            state=state.upper() if state else None,
            reference_date=when,
            years_of_history=years,
            cohorts=tuple(parsed),
        )
    except InvalidOptions as error:
        raise typer.BadParameter(str(error)) from None


def _progress_bar() -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class PatientsPerSecond(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} patients/s")

    return Progress(
        TextColumn("{task.description} patients"),
        BarColumn(),
        MofNCompleteColumn(),
        PatientsPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _dev_secret(var_dir: Path, client_id: str) -> str:
    """The client's secret from the dev credentials ``medmesh up`` keeps, or ""."""
    path = var_dir / "credentials.json"
    if not path.is_file():
        return ""
    try:
        secret = json.loads(path.read_text()).get("clients", {}).get(client_id, "")
    except (OSError, ValueError, AttributeError):
        return ""
    return secret if isinstance(secret, str) else ""


def _load_target(
    fhir_url: str,
    token: str | None,
    client_id: str,
    client_secret: str | None,
    token_url: str | None,
    var_dir: Path,
) -> PhiTarget:
    from medmesh.platform.config import SERVICE_PORTS
    from medmesh.synthetic.loading import PhiTarget

    secret = client_secret or ("" if token else _dev_secret(var_dir, client_id))
    if not token and not secret:
        raise typer.BadParameter(
            "loading needs --token, or --client-secret (with --client-id and --token-url), "
            f"or the dev credentials that `medmesh up` keeps in {var_dir / 'credentials.json'}",
            param_hint="--load",
        )
    try:
        return PhiTarget(
            fhir_url=fhir_url.rstrip("/"),
            access_token=token or "",
            token_url=token_url or f"http://127.0.0.1:{SERVICE_PORTS['auth']}/oauth/token",
            client_id=client_id,
            client_secret=secret,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--load") from None


def _generate(
    options: GenerationOptions,
    out: Path,
    formats: frozenset[str],
    workers: int,
    report: bool,
) -> None:
    from medmesh.synthetic.runner import run_generation

    started = time.perf_counter()
    with _progress_bar() as progress:
        task = progress.add_task("generate", total=options.size)
        manifest = run_generation(
            options,
            out,
            formats=formats,
            workers=workers,
            on_progress=lambda done: progress.update(task, completed=done),
        )
    elapsed = time.perf_counter() - started
    if report and manifest.report is not None:
        _echo(manifest.report.render_text())
    _echo(
        f"{manifest.patients:,} patients, {manifest.resources:,} resources "
        f"({manifest.resources / manifest.patients:.1f} per patient) in {elapsed:.1f} s "
        f"({manifest.patients / elapsed:,.0f} patients/s), seed {options.seed}"
    )
    _echo(f"wrote {', '.join(sorted(formats))} to {out} (manifest: {out / 'manifest.json'})")


def _load(options: GenerationOptions, target: PhiTarget) -> None:
    from medmesh.synthetic.loading import LoadRefused, load_patients

    try:
        with _progress_bar() as progress:
            task = progress.add_task("load", total=options.size)
            summary = asyncio.run(
                load_patients(
                    target,
                    options,
                    on_progress=lambda done: progress.update(task, completed=done),
                )
            )
    except LoadRefused as refused:
        typer.echo(f"error: {target.fhir_url} refused the load: {refused.message}", err=True)
        raise typer.Exit(1) from None
    present = summary.patients_already_present
    _echo(
        f"loaded {summary.patients_loaded:,} patients ({summary.resources_loaded:,} resources, "
        f"after {summary.directory_resources:,} directory resources) into {target.fhir_url} "
        f"in {summary.seconds:.1f} s" + (f"; {present:,} were already there" if present else "")
    )
    if summary.patients_failed:
        typer.echo(f"error: {summary.describe_failures()}", err=True)
        raise typer.Exit(1)


def synth(
    size: int = typer.Option(1000, "-n", "--size", help="number of patients (cohorts included)"),
    seed: int | None = typer.Option(
        None, help="run seed, 0 ≤ seed < 2^63 (default: a random one, recorded in the manifest)"
    ),
    formats: list[str] = typer.Option(
        ["ndjson"], "--format", "-f", help="ndjson | bundle | csv (repeat it or give a comma list)"
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="output folder (created if missing; leave out with --load to write no files)",
    ),
    workers: int = typer.Option(1, "--workers", "-w", help="worker processes (output is the same)"),
    cohorts: list[str] = typer.Option(
        [], "--cohort", help="CONDITION:COUNT patients that have the condition, e.g. diabetes:1000"
    ),
    age_min: int = typer.Option(0, "--age-min", help="youngest age"),
    age_max: int = typer.Option(90, "--age-max", help="oldest age"),
    sex: str | None = typer.Option(None, "--sex", help="female | male (default: both)"),
    state: str | None = typer.Option(
        None, "--state", help="US state code, e.g. MA (default: by population)"
    ),
    reference_date: str | None = typer.Option(
        None, "--reference-date", help="'today' of the run, YYYY-MM-DD (default: today, UTC)"
    ),
    years: int = typer.Option(10, "--years", help="years of history before the reference date"),
    no_report: bool = typer.Option(False, "--no-report", help="do not print the realism report"),
    load: str | None = typer.Option(
        None, "--load", help="also load the patients into this FHIR base, e.g. phi's .../fhir"
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="MEDMESH_SYNTH_TOKEN", help="access token for --load"
    ),
    client_id: str = typer.Option(
        "svc-synthetic", "--client-id", help="OAuth client of --load (client credentials)"
    ),
    client_secret: str | None = typer.Option(
        None,
        "--client-secret",
        envvar="MEDMESH_SYNTH_CLIENT_SECRET",
        help="its secret (default: the dev credentials of `medmesh up` in --var-dir)",
    ),
    token_url: str | None = typer.Option(
        None, "--token-url", help="token endpoint (default: the local auth-service's)"
    ),
    var_dir: Path = typer.Option(
        Path("var"), "--var-dir", help="where `medmesh up` keeps the dev credentials"
    ),
) -> None:
    """Generate synthetic patients (FHIR R4 NDJSON, transaction Bundles, Synthea-like CSV).

    Files go to --out with a manifest.json (seed, options, counts, checksums); --load also
    posts the patients' transaction Bundles to a FHIR server such as phi-service.
    """
    from medmesh.synthetic.engine import InvalidOptions
    from medmesh.synthetic.runner.generation import check_formats

    options = _options(size, seed, cohorts, age_min, age_max, sex, state, reference_date, years)
    try:
        chosen = check_formats(_formats(formats))
    except InvalidOptions as error:
        raise typer.BadParameter(str(error), param_hint="--format") from None
    if workers < 1:
        raise typer.BadParameter("workers must be ≥ 1", param_hint="--workers")
    if out is None and load is None:
        raise typer.BadParameter("give --out DIR for files, --load URL to load, or both")
    target = (
        _load_target(load, token, client_id, client_secret, token_url, var_dir) if load else None
    )
    if out is not None:
        _generate(options, out, chosen, workers, report=not no_report)
    if target is not None:
        _load(options, target)
