"""What phi's compiled modules answer, written as JSON, for the differential test of
:mod:`tests.phi.test_native` (run in a process of its own: ``python -m tests.phi.native_probe
OUT``, with or without ``MEDMESH_NATIVE=off``).

On every conformance resource and seeded mutations of them: R4's issues, the check
:func:`validate_resource` raises (references brought to their canonical form in place), the
resource afterwards as :mod:`jsontext` writes and reads it again, its index rows (fixed keys),
its patient compartment, and each of its references read leniently and as a search value, and
as a Bundle's entry holds it. On every conformance Bundle and seeded mutations of its entries'
requests: the entries :func:`parse_bundle` reads, or its refusal.
"""

from __future__ import annotations

import copy
import random
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from medmesh.phi import NATIVE_GROUP
from medmesh.phi.bundles.references import reference_holders
from medmesh.phi.bundles.requests import parse_bundle
from medmesh.phi.fhir import jsontext
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.r4 import validate
from medmesh.phi.fhir.references import LocalBases, canonical_search_value, lenient_target
from medmesh.phi.fhir.validation import validate_resource
from medmesh.phi.search.extract import index_rows
from medmesh.platform import native
from medmesh.platform.crypto import BlindIndex
from medmesh.platform.errors import MedmeshError
from tests.phi.fhir.r4.conformance import CONFORMANCE, conformance_resources
from tests.phi.fhir.r4.mutations import KINDS, mutate

MUTATIONS = 2000
BASES = LocalBases("https://phi.example/fhir", "http://localhost:8002/fhir")
BLIND = BlindIndex(b"native-probe-blind-index-key-32b")


def _rows(resource_type: str, resource: dict[str, Any]) -> dict[str, list[Any]]:
    rows = index_rows(resource_type, resource, BLIND)
    return {
        "strings": sorted(rows.strings),
        "lookup": sorted(rows.lookup),
        "tokens": sorted(rows.tokens),
        "dates": sorted(rows.dates),
        "references": sorted(rows.references),
    }


def _answers(name: str, resource: Any) -> dict[str, Any]:
    issues = validate(resource)
    answer: dict[str, Any] = {
        "name": name,
        "issues": [[i.severity, i.code, i.expression, i.diagnostics] for i in issues],
        "holders": [h["reference"] for h in reference_holders(resource)],
    }
    try:
        resource_type = validate_resource(resource, max_depth=64, bases=lambda: BASES)
    except MedmeshError as exc:
        answer["refused"] = [exc.status, exc.message, exc.extra]
        return answer
    text = jsontext.dumps(resource)
    answer["text"] = text.decode()
    answer["again"] = jsontext.dumps(jsontext.loads(text)) == text
    answer["rows"] = _rows(resource_type, resource)
    answer["patient"] = compartment_patient(resource)
    answer["targets"] = [
        [str(lenient_target(r, BASES)), canonical_search_value(r, lambda: BASES)]
        for r in (h["reference"] for h in reference_holders(resource))
    ]
    return answer


#: What a client gets wrong in an entry's request: each replaces or drops one part of it.
_REQUEST_MUTATIONS: tuple[tuple[str | None, Any], ...] = (
    ("method", "FETCH"),
    ("method", None),
    ("url", "Patient/"),
    ("url", "Observation?code=http://loinc.org|1234-5&_count=1"),
    ("url", "Patient/123/_history/2"),
    ("url", "https://elsewhere.example/fhir/Patient/1"),
    ("url", 7),
    ("ifNoneExist", "identifier=urn:x|1"),
    ("ifMatch", 'W/"3"'),
    (None, None),
)


def _bundle_answers(name: str, bundle: Any) -> dict[str, Any]:
    try:
        kind, entries = parse_bundle(bundle, 10_000, "https://phi.example/fhir")
    except MedmeshError as exc:
        return {"name": name, "refused": [exc.status, exc.message, exc.extra]}
    return {
        "name": name,
        "kind": kind,
        "entries": [
            [
                *(e.index, e.method, e.resource_type, e.resource_id, e.query, e.version),
                *(e.full_url, e.if_none_exist, e.if_match, e.if_none_match, e.where, e.params),
                None if e.error is None else [e.error.status, e.error.message, e.error.extra],
            ]
            for e in entries
        ],
    }


def _bundles(rng: random.Random) -> list[dict[str, Any]]:
    answers = []
    for path in sorted(CONFORMANCE.glob("synthea*/*.json")) + sorted(
        CONFORMANCE.glob("hl7/*.json")
    ):
        bundle = jsontext.loads(path.read_bytes())
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            continue
        answers.append(_bundle_answers(path.name, bundle))
        for kind in ("transaction", "batch"):
            entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
            if not entries:
                continue
            for part, value in _REQUEST_MUTATIONS:
                changed = copy.deepcopy(entries)
                entry = changed[rng.randrange(len(changed))]
                request = entry.setdefault("request", {"method": "POST", "url": "Patient"})
                if part is None:
                    del entry["request"]
                elif value is None:
                    request.pop(part, None)
                else:
                    request[part] = value
                mutated = {"resourceType": "Bundle", "type": kind, "entry": changed}
                answers.append(_bundle_answers(f"{path.name} ({kind}, {part}={value})", mutated))
    return answers


def _default(value: Any) -> str:
    if isinstance(value, datetime | Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def main(out: Path) -> None:
    rng = random.Random(49)
    resources = conformance_resources()
    answers = [_answers(name, jsontext.loads(jsontext.dumps(r))) for name, r in resources]
    for index in range(MUTATIONS):
        name, resource = resources[rng.randrange(len(resources))]
        kind = KINDS[index % len(KINDS)]
        mutated = mutate(resource, kind, rng)
        if mutated is not None:
            answers.append(_answers(f"{name} ({kind})", mutated))
    bundles = _bundles(rng)
    status = native.status(NATIVE_GROUP)
    report = {
        "native": [status.active, status.reason] if status else None,
        "rules": sys.modules["medmesh.phi.fhir.r4.rules"].__file__,
        "answers": answers,
        "bundles": bundles,
    }
    out.write_bytes(orjson.dumps(report, default=_default))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
