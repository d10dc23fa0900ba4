"""One chunk of patients rendered to the bytes of every requested format (in a worker process).

A chunk is a contiguous index range. Every patient depends only on (options, index), and the
parent appends chunks strictly in index order, so the files are the same bytes whatever the
number of workers. Each resource is serialized once: the NDJSON line is reused inside the
patient's Bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from medmesh.synthetic.engine import GenerationOptions, PatientGenerator
from medmesh.synthetic.output.bundles import patient_bundle_bytes
from medmesh.synthetic.output.csv_writer import CsvChunk
from medmesh.synthetic.realism import RealismReport

FORMATS = frozenset({"ndjson", "bundle", "csv"})
_NEWLINE = orjson.OPT_APPEND_NEWLINE


@dataclass
class RenderedChunk:
    """What the parent appends to the files for patients ``start`` to ``stop - 1``."""

    start: int
    stop: int
    counts: dict[str, int]
    report: RealismReport
    ndjson: dict[str, bytearray] = field(default_factory=dict)
    csv: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    bundles: list[bytes] = field(default_factory=list)

    @property
    def patients(self) -> int:
        return self.stop - self.start


def render_chunk(
    generator: PatientGenerator, formats: frozenset[str], start: int, stop: int
) -> RenderedChunk:
    with_ndjson = "ndjson" in formats
    with_bundles = "bundle" in formats
    # NDJSON needs plain references; without it patients are generated with urn:uuid: ones,
    # which a Bundle takes as they are (the CSV keys are the same ids either way).
    references: Literal["plain", "urn"] = "plain" if with_ndjson else "urn"
    csv = CsvChunk() if "csv" in formats else None
    lines: dict[str, bytearray] = {}
    counts: dict[str, int] = {}
    bundles: list[bytes] = []
    report = RealismReport()
    dumps = orjson.dumps
    for index in range(start, stop):
        patient = generator.patient(index, references)
        report.add(patient.facts)
        resources = patient.resources
        if with_ndjson:
            serialized = []
            for resource in resources:
                line = dumps(resource, option=_NEWLINE)
                serialized.append(line)
                buffer = lines.get(resource["resourceType"])
                if buffer is None:
                    buffer = lines[resource["resourceType"]] = bytearray()
                buffer += line
        else:
            for resource in resources:
                counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
            serialized = [dumps(resource) for resource in resources] if with_bundles else []
        if with_bundles:
            bundles.append(patient_bundle_bytes(resources, serialized, references=references))
        if csv is not None:
            csv.add_patient(resources)
    if with_ndjson:  # one resource per line: the lines are the counts (JSON has no raw newline)
        counts = {kind: buffer.count(b"\n") for kind, buffer in lines.items()}
    return RenderedChunk(
        start=start,
        stop=stop,
        counts=counts,
        report=report,
        ndjson=lines,
        csv=csv.tables() if csv is not None else {},
        bundles=bundles,
    )


# --- worker process side: one generator per process, built once by the pool initializer ---

_worker_generator: PatientGenerator | None = None
_worker_formats: frozenset[str] = frozenset()


def init_worker(options_json: dict[str, Any], formats: frozenset[str]) -> None:
    global _worker_generator, _worker_formats
    _worker_generator = PatientGenerator(GenerationOptions.from_json(options_json))
    _worker_formats = formats


def render_chunk_in_worker(start: int, stop: int) -> RenderedChunk:
    assert _worker_generator is not None, "init_worker runs first"
    return render_chunk(_worker_generator, _worker_formats, start, stop)
