"""Generated patients as byte streams, for the synchronous API and the phi-service loader.

Same bytes as the files of a run with the same options: ``iter_patient_bundles`` yields what
``fhir/patient-<index>.json`` holds, ``ndjson_stream`` the lines of the ``ndjson/`` files
(directory first, then each patient's resources, all types mixed in one stream).
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from medmesh.synthetic.engine import GenerationOptions, PatientGenerator
from medmesh.synthetic.output.bundles import directory_bundle, patient_bundle_bytes

_NEWLINE = orjson.OPT_APPEND_NEWLINE


def _range(options: GenerationOptions, start: int, stop: int | None) -> range:
    stop = options.size if stop is None else stop
    if not 0 <= start <= stop <= options.size:
        raise ValueError(f"patient range [{start}, {stop}) is outside [0, {options.size})")
    return range(start, stop)


def directory_bundle_bytes(options: GenerationOptions) -> bytes:
    """The run's directory Bundle (PUT entries): load it before any patient Bundle."""
    return orjson.dumps(directory_bundle(PatientGenerator(options).directory()))


def iter_patient_bundles(
    options: GenerationOptions, start: int = 0, stop: int | None = None
) -> Iterator[bytes]:
    """The transaction Bundle of each patient ``start`` to ``stop - 1``, serialized."""
    generator = PatientGenerator(options)
    for index in _range(options, start, stop):
        resources = generator.patient(index, "urn").resources
        yield patient_bundle_bytes(resources, references="urn")


def ndjson_stream(
    options: GenerationOptions,
    start: int = 0,
    stop: int | None = None,
    *,
    include_directory: bool = True,
) -> Iterator[bytes]:
    """NDJSON, one resource per line, plain references: the directory, then patient by patient.

    Each yielded item holds whole lines (the directory, or one patient's resources).
    """
    generator = PatientGenerator(options)
    if include_directory:
        yield b"".join(orjson.dumps(r, option=_NEWLINE) for r in generator.directory())
    for index in _range(options, start, stop):
        yield b"".join(orjson.dumps(r, option=_NEWLINE) for r in generator.patient(index).resources)
