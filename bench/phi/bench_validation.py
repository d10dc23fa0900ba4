"""FHIR resource validation, in process: the validator phi used before (fhir.resources' R4B
models plus the bindings they skip, now the tests' second opinion) against the R4 validator (``medmesh.phi.fhir.r4``: HL7's R4 JSON Schema
compiled with jsonschema-rs, then R4's other rules in one walk).

The same resources for every row: each entry of the Synthea bundles of
/work/shared/conformance (``synthea/`` and ``synthea-2019/``). Rows, in µs per resource:

- ``control_orjson_loads``: parsing each resource's JSON (``orjson.loads``), the control,
  measured in the same run: every other row carries its ratio to it;
- ``parse_jsontext``: parsing each with ``medmesh.phi.fhir.jsontext.loads`` (what the request
  path does: orjson, and the standard library with decimals kept when a number needs it);
- ``old_r4b``: ``tests.phi.fhir.r4.r4b_validator.validate_resource``;
- ``new_r4``: ``medmesh.phi.fhir.r4.validate`` (schema and rules);
- ``request_path``: ``medmesh.phi.fhir.validation.validate_resource`` (the guards before
  validation, then the R4 validator), as phi's writes call it;
- ``new_r4_schema_only``: the compiled schema's verdict alone (``is_valid``), to show what the
  rules walk costs on top.

Each round runs every row over all resources in a rotating order; the figure is the best
round's CPU time of this process (``time.process_time``) per resource. ``old_over_new`` is how
many times faster the R4 validator is. Run: ``.venv/bin/python bench/phi/bench_validation.py``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.servers import ROOT

CONFORMANCE = ROOT.parent / "shared/conformance"


def synthea_resources() -> list[bytes]:
    """The JSON of every entry's resource of the Synthea bundles."""
    found = []
    for path in sorted(CONFORMANCE.glob("synthea*/*.json")):
        for entry in orjson.loads(path.read_bytes())["entry"]:
            found.append(orjson.dumps(entry["resource"]))
    return found


def _cpu_seconds_per_item(run: Callable[[Any], object], items: Sequence[Any]) -> float:
    start = time.process_time()
    for item in items:
        run(item)
    return (time.process_time() - start) / len(items)


def main(rounds: int = 5) -> dict[str, Any]:
    from tests.phi.fhir.r4.r4b_validator import validate_resource

    from medmesh.phi.fhir import jsontext
    from medmesh.phi.fhir.r4 import Validator
    from medmesh.phi.fhir.validation import validate_resource as request_path

    raw = synthea_resources()
    parsed = [orjson.loads(item) for item in raw]
    started = time.process_time()
    validator = Validator()
    compile_seconds = time.process_time() - started
    # Both accept every resource (a refused one would measure the error path instead).
    assert all(validator.validate(resource) == [] for resource in parsed)
    for resource in parsed:
        validate_resource(resource)

    rows: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("control_orjson_loads", orjson.loads, raw),
        ("parse_jsontext", jsontext.loads, raw),
        ("old_r4b", validate_resource, parsed),
        ("new_r4", validator.validate, parsed),
        ("request_path", request_path, parsed),
        ("new_r4_schema_only", validator.schema.is_valid, parsed),
    ]
    best = {name: float("inf") for name, _, _ in rows}
    for round_ in range(rounds):
        shift = round_ % len(rows)
        for name, run, items in rows[shift:] + rows[:shift]:
            best[name] = min(best[name], _cpu_seconds_per_item(run, items))
    control = best["control_orjson_loads"]
    report: dict[str, Any] = {
        "resources": len(parsed),
        "resource_types": len({r["resourceType"] for r in parsed}),
        "new_r4_compile_s": round(compile_seconds, 3),
    }
    for name, seconds in best.items():
        report[f"{name}_us"] = round(seconds * 1e6, 2)
        report[f"{name}_per_s"] = round(1 / seconds)
        if name != "control_orjson_loads":
            report[f"{name}_ratio_to_control"] = round(seconds / control, 2)
    report["old_over_new"] = round(best["old_r4b"] / best["new_r4"], 1)
    report["old_over_new_schema_only"] = round(best["old_r4b"] / best["new_r4_schema_only"], 1)
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
