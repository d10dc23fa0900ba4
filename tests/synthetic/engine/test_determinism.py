"""Determinism: patient ``i`` depends only on (options, ``i``)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from datetime import date

import orjson

from medmesh.synthetic.engine import GENERATOR_VERSION, GenerationOptions, PatientGenerator

OPTIONS = GenerationOptions(seed=424242, size=200, reference_date=date(2025, 6, 30))


def patient_bytes(generator: PatientGenerator, index: int, references: str = "plain") -> bytes:
    patient = generator.patient(index, references)  # type: ignore[arg-type]
    return orjson.dumps(patient.resources)


def test_same_options_give_byte_identical_patients_and_directory() -> None:
    first, second = PatientGenerator(OPTIONS), PatientGenerator(OPTIONS)
    assert orjson.dumps(first.directory()) == orjson.dumps(second.directory())
    for index in range(0, 200, 7):
        assert patient_bytes(first, index) == patient_bytes(second, index)


def test_a_patient_does_not_depend_on_the_patients_generated_before_it() -> None:
    in_order = PatientGenerator(OPTIONS)
    expected = [patient_bytes(in_order, i) for i in range(20)]
    shuffled = PatientGenerator(OPTIONS)
    for index in (19, 3, 11, 0, 7, 3):
        assert patient_bytes(shuffled, index) == expected[index]


def test_another_seed_gives_other_patients() -> None:
    other = PatientGenerator(replace(OPTIONS, seed=OPTIONS.seed + 1))
    same = PatientGenerator(OPTIONS)
    assert patient_bytes(other, 0) != patient_bytes(same, 0)
    assert orjson.dumps(other.directory()) != orjson.dumps(same.directory())


def test_the_run_size_does_not_change_a_patient() -> None:
    small = PatientGenerator(replace(OPTIONS, size=10))
    assert patient_bytes(small, 5) == patient_bytes(PatientGenerator(OPTIONS), 5)


def test_urn_references_are_the_plain_ones_with_urn_uuid_prefixes() -> None:
    generator = PatientGenerator(OPTIONS)
    directory_ids = {f"{r['resourceType']}/{r['id']}" for r in generator.directory()}
    plain = generator.patient(3, "plain")
    urn = generator.patient(3, "urn")
    assert [r["id"] for r in plain.resources] == [r["id"] for r in urn.resources]
    own = {f"{r['resourceType']}/{r['id']}": f"urn:uuid:{r['id']}" for r in plain.resources}
    plain_refs = re.findall(rb'"reference":"([^"]+)"', orjson.dumps(plain.resources))
    urn_refs = re.findall(rb'"reference":"([^"]+)"', orjson.dumps(urn.resources))
    assert len(plain_refs) == len(urn_refs) > 10
    for before, after in zip(plain_refs, urn_refs, strict=True):
        text = before.decode()
        if text in directory_ids:
            assert after == before  # the directory is always referenced as Type/id
        else:
            assert after.decode() == own[text]


def test_ids_are_uuids_unique_across_patients() -> None:
    generator = PatientGenerator(OPTIONS)
    ids = [r["id"] for i in range(200) for r in generator.patient(i).resources]
    ids += [r["id"] for r in generator.directory()]
    assert len(ids) == len(set(ids))
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        for i in ids
    )


def test_mrns_are_unique_within_a_run() -> None:
    generator = PatientGenerator(OPTIONS)
    mrns = [
        generator.patient(i).resources[0]["identifier"][0]["value"] for i in range(OPTIONS.size)
    ]
    assert len(set(mrns)) == len(mrns)


def test_the_generator_version_is_recorded() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", GENERATOR_VERSION)


_DIGEST_SCRIPT = """
import hashlib, sys
from datetime import date
import orjson
from medmesh.synthetic.engine import Cohort, GenerationOptions, PatientGenerator
options = GenerationOptions(
    seed=77, size=30, reference_date=date(2025, 6, 30), cohorts=(Cohort("asthma", 5),)
)
generator = PatientGenerator(options)
digest = hashlib.sha256(orjson.dumps(generator.directory()))
for index in range(30):
    digest.update(orjson.dumps(generator.patient(index, "urn").resources))
sys.stdout.write(digest.hexdigest())
"""


def test_output_is_the_same_in_processes_with_different_hash_seeds() -> None:
    # Python salts hash() per process; the engine must not depend on it (nor on set order).
    digests = {
        subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT],
            env={"PYTHONHASHSEED": hash_seed},
            capture_output=True,
            check=True,
            text=True,
            timeout=60,
        ).stdout
        for hash_seed in ("1", "2", "3")
    }
    assert len(digests) == 1
