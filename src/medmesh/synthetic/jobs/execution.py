"""A job's work, in a process of its own: generate the files, then load phi-service.

Generating is CPU-bound; a process keeps it off the service's event loop (and the GIL), and
``run_generation`` may start worker processes of its own. The process reports through shared
memory (patients generated, loaded, the phase) and sends one outcome through a pipe when it
ends; the service cancels it with an event. It ignores SIGINT: Ctrl-C in a terminal reaches the
whole process group, and the service, not the terminal, decides how a job ends.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Protocol

from medmesh.platform.logging import configure_logging, get_logger
from medmesh.synthetic.engine import GenerationOptions, InvalidOptions
from medmesh.synthetic.loading import (
    LoadCancelled,
    LoadRefused,
    LoadSettings,
    PhiTarget,
    load_patients,
)
from medmesh.synthetic.runner import GenerationCancelled, run_generation

#: Slots of the shared progress array.
GENERATED, LOADED, PHASE = 0, 1, 2
GENERATING, LOADING = 0, 1
PHASES = {GENERATING: "generating", LOADING: "loading"}

log = get_logger("medmesh.synthetic.jobs")


class ProgressSlots(Protocol):
    """The shared integer array the job process writes and the service reads."""

    def __getitem__(self, index: int) -> int: ...

    def __setitem__(self, index: int, value: int) -> None: ...


@dataclass(frozen=True)
class JobSpec:
    """Everything the job process needs (sent to it once, when it starts)."""

    job_id: str
    options: dict[str, Any]
    formats: tuple[str, ...]
    workers: int
    out_dir: Path
    target: PhiTarget | None
    load_settings: LoadSettings
    skip_existing: bool
    log_level: str = "info"
    log_file: Path | None = None


@dataclass(frozen=True)
class JobOutcome:
    """How the job process ended (``status`` is succeeded, failed or cancelled)."""

    status: str
    error: str | None = None
    manifest: dict[str, Any] | None = None
    load: dict[str, Any] | None = None


def run_job_process(
    spec: JobSpec, progress: ProgressSlots, cancel: Event, outcome: Connection
) -> None:
    """The job process's entry point."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging("synthetic", spec.log_level, spec.log_file)
    try:
        result = execute(spec, progress, cancel)
    except BaseException as exc:  # the outcome must reach the service whatever happened
        log.error("job_process_failed", job_id=spec.job_id, error_type=type(exc).__name__)
        result = JobOutcome("failed", f"internal error ({type(exc).__name__}); see the log")
    outcome.send(result)
    outcome.close()


def execute(spec: JobSpec, progress: ProgressSlots, cancel: Event) -> JobOutcome:
    """Generate (when formats are asked) and load (with a target); never raises for a job's
    expected endings: success, cancellation, invalid options, a refused or partial load."""
    manifest: dict[str, Any] | None = None
    try:
        options = GenerationOptions.from_json(spec.options)
        if spec.formats:

            def generated(done: int) -> None:
                progress[GENERATED] = done

            result = run_generation(
                options,
                spec.out_dir,
                formats=frozenset(spec.formats),
                workers=spec.workers,
                on_progress=generated,
                is_cancelled=cancel.is_set,
            )
            manifest = result.to_json()
        if spec.target is None:
            return JobOutcome("succeeded", manifest=manifest)
        progress[PHASE] = LOADING

        def loaded(done: int) -> None:
            progress[LOADED] = done

        summary = asyncio.run(
            load_patients(
                spec.target,
                options,
                settings=spec.load_settings,
                skip_existing=spec.skip_existing,
                on_progress=loaded,
                is_cancelled=cancel.is_set,
            )
        )
        progress[LOADED] = summary.patients_done
        if summary.patients_failed:
            return JobOutcome("failed", summary.describe_failures(), manifest, summary.to_json())
        return JobOutcome("succeeded", manifest=manifest, load=summary.to_json())
    except (GenerationCancelled, LoadCancelled):
        return JobOutcome("cancelled")
    except LoadRefused as exc:
        return JobOutcome("failed", exc.message, manifest, exc.summary.to_json())
    except InvalidOptions as exc:
        return JobOutcome("failed", str(exc))
