"""Benchmark of the synthetic generator (issue "synthetic-phi-service").

One core (every measured process is pinned to core 0 with ``taskset``), NDJSON to disk, one
worker, the same path as ``medmesh synth --format ndjson --workers 1``:

- generator: ``run_generation`` for ``BENCH_SYNTHETIC_PATIENTS`` patients (default 20,000):
  patients/s, resources/s, mean resources per patient;
- control, same run, same core: serializing with orjson and appending to per-type NDJSON files
  the same number of patients' worth of pre-built, fixed resources (the I/O + serialization
  floor that any generator writing this output pays); ratio = generator resources/s over the
  control's;
- peak memory: a separate run of ``BENCH_SYNTHETIC_RSS_PATIENTS`` patients (default 100,000) in
  its own process; its peak RSS comes from ``wait4`` (the child's ``ru_maxrss``).

Each measurement runs in a fresh child process (``python bench_synthetic.py <mode> N DIR``) so
the pinning and the peak RSS are that process's own. The load average is recorded before and
after: the machine may be shared.

Targets: ≥ 1,000 patients/s with ≥ 50 resources per patient; ≤ 300 MB peak for 100,000 patients.
Anchor: Synthea ≈ 1,000 patients per minute on a multi-core laptop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = HERE.parent / "results"
PATIENTS = int(os.environ.get("BENCH_SYNTHETIC_PATIENTS", "20000"))
RSS_PATIENTS = int(os.environ.get("BENCH_SYNTHETIC_RSS_PATIENTS", "100000"))
SEED = 20261126
REFERENCE_DATE = date(2026, 1, 1)
#: Distinct pre-built patients the control cycles through.
CONTROL_TEMPLATES = 200
#: The core every measured process is pinned to.
CORE = os.environ.get("BENCH_SYNTHETIC_CORE", "0")


def _options(size: int, years: int = 10) -> Any:
    from medmesh.synthetic.engine import GenerationOptions

    return GenerationOptions(
        seed=SEED, size=size, reference_date=REFERENCE_DATE, years_of_history=years
    )


def measure_generator(size: int, out: Path, years: int = 10) -> dict[str, Any]:
    from medmesh.synthetic.runner import run_generation

    started = time.perf_counter()
    manifest = run_generation(_options(size, years), out, formats=frozenset({"ndjson"}), workers=1)
    seconds = time.perf_counter() - started
    patient_resources = manifest.resources - _directory_size(size)
    return {
        "patients": size,
        "resources": manifest.resources,
        "patient_resources": patient_resources,
        "seconds": seconds,
        "bytes": sum(f.bytes for f in manifest.files),
    }


def _directory_size(size: int) -> int:
    from medmesh.synthetic.engine import PatientGenerator

    return len(PatientGenerator(_options(size)).directory())


def measure_control(size: int, out: Path) -> dict[str, Any]:
    """orjson + per-type NDJSON appends of fixed resources, chunk by chunk like the runner."""
    import orjson

    from medmesh.synthetic.engine import PatientGenerator
    from medmesh.synthetic.runner import DEFAULT_CHUNK_SIZE as CHUNK

    generator = PatientGenerator(_options(CONTROL_TEMPLATES))
    templates = [generator.patient(i).resources for i in range(CONTROL_TEMPLATES)]
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    resources = 0
    started = time.perf_counter()
    for start in range(0, size, CHUNK):
        lines: dict[str, bytearray] = {}
        for index in range(start, min(start + CHUNK, size)):
            for resource in templates[index % CONTROL_TEMPLATES]:
                kind = resource["resourceType"]
                buffer = lines.get(kind)
                if buffer is None:
                    buffer = lines[kind] = bytearray()
                buffer += dumps(resource, option=newline)
                resources += 1
        for kind, data in lines.items():
            handle = files.get(kind)
            if handle is None:
                handle = files[kind] = (out / f"{kind}.ndjson").open("wb")
            handle.write(data)
    for handle in files.values():
        handle.close()
    seconds = time.perf_counter() - started
    return {"patients": size, "resources": resources, "seconds": seconds}


def measure_short_history(size: int, out: Path) -> dict[str, Any]:
    """The same with 5 years of history (the default is 10): fewer visits per patient."""
    return measure_generator(size, out, years=5)


MODES = {
    "generate": measure_generator,
    "generate_5y": measure_short_history,
    "control": measure_control,
}


def _pinned(cmd: list[str]) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", CORE, *cmd]
    return cmd


def _child(mode: str, size: int) -> dict[str, Any]:
    """Run one measurement in a pinned child process; add its peak RSS (MB) from wait4."""
    out = Path(tempfile.mkdtemp(prefix=f"medmesh-bench-synthetic-{mode}-"))
    try:
        cmd = _pinned([sys.executable, str(Path(__file__).resolve()), mode, str(size), str(out)])
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"bench {mode} {size} exited with {process.returncode}")
        result: dict[str, Any] = json.loads(output)
        result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: kilobytes
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _rates(run: dict[str, Any]) -> dict[str, float]:
    return {
        "patients_per_s": round(run["patients"] / run["seconds"], 1),
        "resources_per_s": round(run["resources"] / run["seconds"], 1),
    }


def main() -> dict[str, Any]:
    load_before = os.getloadavg()
    generator = _child("generate", PATIENTS)
    control = _child("control", PATIENTS)
    short = _child("generate_5y", PATIENTS)
    large = _child("generate", RSS_PATIENTS)
    load_after = os.getloadavg()
    rates, control_rates, large_rates = _rates(generator), _rates(control), _rates(large)
    report = {
        "patients": PATIENTS,
        "patients_per_s": rates["patients_per_s"],
        "resources_per_s": rates["resources_per_s"],
        "mean_resources_per_patient": round(generator["patient_resources"] / PATIENTS, 1),
        "seconds": round(generator["seconds"], 2),
        "mb_written": round(generator["bytes"] / 1e6, 1),
        "control_fixed_resources_orjson_ndjson": {
            "resources_per_s": control_rates["resources_per_s"],
            "patients_per_s": control_rates["patients_per_s"],
        },
        "ratio_to_control_resources_per_s": round(
            rates["resources_per_s"] / control_rates["resources_per_s"], 3
        ),
        "five_year_history": {
            **_rates(short),
            "mean_resources_per_patient": round(short["patient_resources"] / PATIENTS, 1),
        },
        "peak_rss_mb": {
            f"{PATIENTS}_patients": generator["peak_rss_mb"],
            f"{RSS_PATIENTS}_patients": large["peak_rss_mb"],
        },
        "large_run": {
            "patients": RSS_PATIENTS,
            **large_rates,
            "seconds": round(large["seconds"], 1),
        },
        "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "pinned_to_core": int(CORE) if _pinned(["x"])[0] == "taskset" else None,
        "targets": {
            "patients_per_s": 1000,
            "mean_resources_per_patient": 50,
            "peak_rss_mb_at_100000_patients": 300,
        },
        "anchor": "Synthea ≈ 1,000 patients/minute on a multi-core laptop",
    }
    return report


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in MODES:
        sys.path.insert(0, str(ROOT / "src"))
        figures = MODES[sys.argv[1]](int(sys.argv[2]), Path(sys.argv[3]))
        sys.stdout.write(json.dumps(figures))
    else:
        figures = main()
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "synthetic.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2))
