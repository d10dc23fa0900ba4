"""run_generation: the same bytes for any number of workers, progress, cancellation, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from medmesh.synthetic.engine import InvalidOptions
from medmesh.synthetic.runner import GenerationCancelled, run_generation
from tests.synthetic.output.conftest import options

ALL_FORMATS = frozenset({"ndjson", "bundle", "csv"})


def checksums(out: Path) -> dict[str, str]:
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != "manifest.json"
    }


def manifest_without_time(out: Path) -> dict[str, object]:
    data: dict[str, object] = orjson.loads((out / "manifest.json").read_bytes())
    data.pop("transactionTime")
    return data


def test_one_and_four_workers_write_byte_identical_files(tmp_path: Path) -> None:
    chosen = options(300, seed=42)
    one, four = tmp_path / "one", tmp_path / "four"
    progress: list[int] = []
    run_generation(chosen, one, formats=ALL_FORMATS, workers=1, chunk_size=20)
    run_generation(
        chosen, four, formats=ALL_FORMATS, workers=4, chunk_size=20, on_progress=progress.append
    )
    assert progress == list(range(20, 301, 20))  # 15 chunks shared by four processes
    sums = checksums(one)
    assert len(sums) > 300  # every NDJSON and CSV file and a Bundle per patient
    assert checksums(four) == sums
    assert manifest_without_time(four) == manifest_without_time(one)


def test_each_format_alone_writes_the_same_bytes_as_all_together(tmp_path: Path) -> None:
    chosen = options(30, seed=7)
    run_generation(chosen, tmp_path / "all", formats=ALL_FORMATS, chunk_size=8)
    together = checksums(tmp_path / "all")
    for name in ALL_FORMATS:
        run_generation(chosen, tmp_path / name, formats=frozenset({name}), chunk_size=8)
        alone = checksums(tmp_path / name)
        assert alone
        assert alone == {path: digest for path, digest in together.items() if path in alone}
    assert sum(len(checksums(tmp_path / name)) for name in ALL_FORMATS) == len(together)


def test_another_seed_gives_other_patients(tmp_path: Path) -> None:
    run_generation(options(20, seed=1), tmp_path / "a")
    run_generation(options(20, seed=2), tmp_path / "b")
    a = (tmp_path / "a" / "ndjson" / "Patient.ndjson").read_bytes()
    b = (tmp_path / "b" / "ndjson" / "Patient.ndjson").read_bytes()
    assert a != b


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cancelled_run_raises_and_leaves_no_manifest(tmp_path: Path, workers: int) -> None:
    run_generation(options(10), tmp_path)  # an earlier complete run in the same folder
    assert (tmp_path / "manifest.json").exists()
    seen: list[int] = []
    with pytest.raises(GenerationCancelled) as cancelled:
        run_generation(
            options(200),
            tmp_path,
            formats=ALL_FORMATS,
            workers=workers,
            chunk_size=10,
            on_progress=seen.append,
            is_cancelled=lambda: len(seen) >= 3,
        )
    assert cancelled.value.patients_done == 30
    assert not (tmp_path / "manifest.json").exists()
    assert not list(tmp_path.rglob("*.ndjson"))
    assert not list(tmp_path.rglob("patient-*.json"))


def test_an_unknown_format_or_no_worker_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptions, match="unknown format xml"):
        run_generation(options(1), tmp_path, formats=frozenset({"xml"}))
    with pytest.raises(InvalidOptions, match="workers"):
        run_generation(options(1), tmp_path, workers=0)
    assert not (tmp_path / "manifest.json").exists()
