"""``run_generation``: generate a run into a folder, in chunks, with workers, progress and cancel.

The index range is cut into fixed chunks (the chunk size never depends on the number of workers,
so even the realism report, merged chunk by chunk, is the same). With one worker the chunks are
rendered in this process; with more, in a pool of spawned processes with a bounded number of
chunks in flight, and the parent appends them strictly in index order: the files are the same
bytes for any number of workers, and memory stays a few chunks whatever the size of the run.
Cancellation is checked between chunks; a cancelled or failed run deletes what it wrote and
never leaves a manifest (the manifest is written last, and only for a finished run).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import orjson

from medmesh.synthetic.engine import (
    GENERATOR_VERSION,
    GenerationOptions,
    InvalidOptions,
    PatientGenerator,
)
from medmesh.synthetic.output.bundle_writer import (
    BUNDLE_FOLDER,
    CHECKSUMS,
    DIRECTORY_BUNDLE,
    BundleFolderWriter,
)
from medmesh.synthetic.output.bundles import directory_bundle
from medmesh.synthetic.output.csv_writer import CsvFolderWriter
from medmesh.synthetic.output.files import WrittenFile
from medmesh.synthetic.output.manifest import MANIFEST_NAME, Manifest, write_manifest
from medmesh.synthetic.output.ndjson import NdjsonFolderWriter
from medmesh.synthetic.realism import RealismReport
from medmesh.synthetic.runner.chunks import (
    FORMATS,
    RenderedChunk,
    init_worker,
    render_chunk,
    render_chunk_in_worker,
)

#: Patients per chunk: large enough to amortize a process hop (~0.1 s of work), small enough
#: to keep memory low (about 12 MB of NDJSON per chunk, ~30 MB with every format).
DEFAULT_CHUNK_SIZE = 128
#: Chunks in flight beyond one per worker: the parent holds at most this many finished ones
#: (memory ≈ (workers + this) chunks) while every worker stays busy.
EXTRA_IN_FLIGHT = 1


class GenerationCancelled(Exception):
    """The run was cancelled between two chunks; nothing it wrote is left marked complete."""

    def __init__(self, patients_done: int) -> None:
        super().__init__(f"generation cancelled after {patients_done} patients")
        self.patients_done = patients_done

    def __repr__(self) -> str:
        return f"GenerationCancelled(patients_done={self.patients_done})"


def check_formats(formats: frozenset[str]) -> frozenset[str]:
    unknown = sorted(formats - FORMATS)
    if unknown or not formats:
        raise InvalidOptions(
            f"unknown format {', '.join(unknown)}; formats are {', '.join(sorted(FORMATS))}"
            if unknown
            else f"choose at least one format of {', '.join(sorted(FORMATS))}"
        )
    return frozenset(formats)


def chunk_ranges(size: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, size, chunk_size):
        yield start, min(start + chunk_size, size)


class ChunkPipeline:
    """Rendered chunks in index order: in this process (one worker) or from a process pool."""

    def __init__(
        self,
        options: GenerationOptions,
        generator: PatientGenerator,
        formats: frozenset[str],
        workers: int,
        chunk_size: int,
    ) -> None:
        self._options = options
        self._generator = generator
        self._formats = formats
        self._workers = workers
        self._chunk_size = chunk_size
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ChunkPipeline:
        if self._workers > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(self._options.to_json(), self._formats),
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __iter__(self) -> Iterator[RenderedChunk]:
        ranges = chunk_ranges(self._options.size, self._chunk_size)
        if self._pool is None:
            for start, stop in ranges:
                yield render_chunk(self._generator, self._formats, start, stop)
            return
        pending: deque[Future[RenderedChunk]] = deque()
        limit = self._workers + EXTRA_IN_FLIGHT
        for start, stop in ranges:
            pending.append(self._pool.submit(render_chunk_in_worker, start, stop))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class RunFolder:
    """The writers of the requested formats under one output folder."""

    def __init__(self, out_dir: Path, formats: frozenset[str]) -> None:
        self.ndjson = NdjsonFolderWriter(out_dir) if "ndjson" in formats else None
        self.bundles = BundleFolderWriter(out_dir) if "bundle" in formats else None
        self.csv = CsvFolderWriter(out_dir) if "csv" in formats else None

    def write_directory(self, resources: list[dict[str, object]]) -> None:
        if self.ndjson is not None:
            for resource in resources:
                line = orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE)
                self.ndjson.write(str(resource["resourceType"]), line, 1)
        if self.bundles is not None:
            data = orjson.dumps(directory_bundle(resources))
            self.bundles.write_directory(data, len(resources))

    def write_chunk(self, chunk: RenderedChunk) -> None:
        if self.ndjson is not None:
            for kind, lines in chunk.ndjson.items():
                self.ndjson.write(kind, lines, chunk.counts[kind])
        if self.bundles is not None:
            self.bundles.write_patients(chunk.start, chunk.bundles)
        if self.csv is not None:
            self.csv.write(chunk.csv)

    def close(self) -> list[WrittenFile]:
        files: list[WrittenFile] = []
        for writer in (self.ndjson, self.bundles, self.csv):
            if writer is not None:
                files += writer.close()
        return files

    def abandon(self) -> None:
        for writer in (self.ndjson, self.bundles, self.csv):
            if writer is not None:
                writer.abandon()


def run_generation(
    options: GenerationOptions,
    out_dir: Path,
    *,
    formats: frozenset[str] = frozenset({"ndjson"}),
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Manifest:
    """Generate ``options.size`` patients into ``out_dir`` and write ``manifest.json`` last.

    ``formats`` ⊂ {"ndjson", "bundle", "csv"}. ``on_progress(patients_done)`` is called after
    each chunk is written; ``is_cancelled()`` is asked between chunks and a ``True`` raises
    :class:`GenerationCancelled` after deleting the files of this run. The output is the same
    bytes for any ``workers`` (the manifest differs only in ``transactionTime``).

    More than one worker uses ``spawn``ed processes: a script that calls this at import time
    needs the usual ``if __name__ == "__main__":`` guard.
    """
    formats = check_formats(frozenset(formats))
    if workers < 1:
        raise InvalidOptions("workers must be ≥ 1")
    if chunk_size < 1:
        raise InvalidOptions("chunk size must be ≥ 1")
    started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)  # the folder no longer holds that run
    generator = PatientGenerator(options)
    directory = generator.directory()
    counts: dict[str, int] = {}
    for resource in directory:
        counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    report = RealismReport()
    done = 0
    folder = RunFolder(out_dir, formats)
    try:
        folder.write_directory(directory)
        with ChunkPipeline(options, generator, formats, workers, chunk_size) as chunks:
            for chunk in chunks:
                if is_cancelled is not None and is_cancelled():
                    raise GenerationCancelled(done)
                folder.write_chunk(chunk)
                report.merge(chunk.report)
                for kind, count in chunk.counts.items():
                    counts[kind] = counts.get(kind, 0) + count
                done += chunk.patients
                if on_progress is not None:
                    on_progress(done)
        files = folder.close()
    except BaseException:
        folder.abandon()
        raise
    manifest = Manifest(
        transaction_time=started,
        seed=options.seed,
        options=options.to_json(),
        generator_version=GENERATOR_VERSION,
        formats=tuple(sorted(formats)),
        patients=options.size,
        counts=counts,
        files=tuple(files),
        realism=report.to_json(),
        report=report,
        bundles=_bundle_layout(options.size) if "bundle" in formats else {},
    )
    write_manifest(out_dir, manifest)
    return manifest


def _bundle_layout(patients: int) -> dict[str, object]:
    return {
        "directory": DIRECTORY_BUNDLE,
        "patients": f"{BUNDLE_FOLDER}/patient-{{index:07d}}.json",
        "count": patients,
        "checksums": CHECKSUMS,
        "load_order": "the directory Bundle first, then the patients' Bundles in index order",
    }
