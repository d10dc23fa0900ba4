"""Benchmark of phi's bulk loads (issue 18): NDJSON import and transaction Bundles, in one process.

The Synthea 2019 patient bundles (/work/shared/conformance/synthea-2019), copied
``BENCH_PHI_IMPORT_COPIES`` times with fresh ids, are loaded two ways into empty databases:
- NDJSON: the resources as ``<Type>.ndjson`` files (references as ``Type/id``), stored by
  ``medmesh.phi.bulk_import.standalone.import_directory`` (what ``medmesh phi import`` runs),
  with ``BENCH_PHI_IMPORT_WORKERS`` preparation processes (default 2, phi's default) and
  again with none;
- transaction: the same resources as transaction Bundles posted to the phi app in process
  (ASGI, no sockets), four at a time, with the same preparation processes and again with none;
each validated, encrypted, blind-indexed and audited as in production. The control, in the same
run (before the loads and after them, the median of five passes each): parsing and serialising
every line with orjson (the least any import of these lines does). Each load's wall time a
resource is also given in controls (``wall_per_resource_in_controls``, with the mean of the two).
The loads run phi's modules compiled with mypyc when their build is current (``make native``;
``MEDMESH_NATIVE=off`` runs the sources); ``preparation`` compares the two on the work a worker
does for a line (parse, validate, seal, index rows), each in a process of its own.
Figures: resources/s (wall) and CPU µs a resource of this process (and of its workers). ``BENCH_PHI_DATABASE_URL``
(a PostgreSQL URL) measures on that server instead: each load gets an empty database of its own
there, made for it and dropped after (the database server's CPU is not counted).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.servers import ROOT

SYNTHEA = Path(
    os.environ.get("BENCH_PHI_SYNTHEA", str(ROOT.parent / "shared/conformance/synthea-2019"))
)
COPIES = int(os.environ.get("BENCH_PHI_IMPORT_COPIES", "30"))
DATABASE_URL = os.environ.get("BENCH_PHI_DATABASE_URL", "")
#: Preparation processes of the loads (phi's default, ``import_workers``).
WORKERS = int(os.environ.get("BENCH_PHI_IMPORT_WORKERS", "2"))
BLIND_KEY = "YmVuY2gtcGhpLWJsaW5kLWluZGV4LWtleS1vZi0zMi1ieXRlcw"
_URN = re.compile(rb'"urn:uuid:([0-9a-f-]{36})"')


def _copies() -> list[dict[str, Any]]:
    """Each copy of each Bundle with fresh ids: a transaction Bundle (urn:uuid fullUrls)."""
    bundles = []
    for copy in range(COPIES):
        for path in sorted(SYNTHEA.glob("*.json")):
            text = path.read_bytes()
            bundle = orjson.loads(_URN.sub(partial(_fresh_urn, copy=copy), text))
            bundles.append(bundle)
    return bundles


def _fresh(uuid: bytes, copy: int) -> bytes:
    return f"{copy:08x}".encode() + uuid[8:]


def _fresh_urn(match: re.Match[bytes], copy: int) -> bytes:
    return b'"urn:uuid:' + _fresh(match.group(1), copy) + b'"'


def _local(match: re.Match[bytes], ids: dict[str, str]) -> bytes:
    return b'"' + ids["urn:uuid:" + match.group(1).decode()].encode() + b'"'


def _ndjson(bundles: list[dict[str, Any]], folder: Path) -> int:
    """The Bundles' resources as <Type>.ndjson, ids from their fullUrls, references Type/id."""
    lines: dict[str, list[bytes]] = {}
    for bundle in bundles:
        ids = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'][9:].replace('-', '')}"
            for e in bundle["entry"]
        }
        for entry in bundle["entry"]:
            text = orjson.dumps(entry["resource"])
            text = _URN.sub(partial(_local, ids=ids), text)
            resource = orjson.loads(text)
            resource["id"] = ids[entry["fullUrl"]].partition("/")[2]
            lines.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for kind, rows in lines.items():
        (folder / f"{kind}.ndjson").write_bytes(b"\n".join(rows) + b"\n")
    return sum(len(rows) for rows in lines.values())


@asynccontextmanager
async def _database(folder: Path, name: str) -> AsyncIterator[str]:
    """An empty database for one load: a SQLite file in ``folder``, or a database of its own
    on the server of ``BENCH_PHI_DATABASE_URL``."""
    if not DATABASE_URL:
        yield f"sqlite+medmesh:///{folder}/{name}.db"
        return
    from medmesh.platform.testing import postgres_database

    async with postgres_database(DATABASE_URL) as url:
        yield url


def _settings(folder: Path, url: str) -> Any:
    from medmesh.phi.config import PhiSettings
    from medmesh.platform.crypto import KeyRing

    return PhiSettings(
        var_dir=folder,
        database_url=url,
        encryption_keys=KeyRing.generate("bench1").to_setting(),
        blind_index_key=BLIND_KEY,
        issuer="http://auth.bench",
        log_level="warning",
    )


def preparation(folder: Path) -> dict[str, Any]:
    """CPU µs a line of what a preparation worker does with every line of ``folder`` (the
    best of five passes), in this process, with phi's modules as this process imports them."""
    from datetime import UTC, datetime

    from medmesh.phi import NATIVE_GROUP
    from medmesh.phi.bulk_import.preparation import LinePreparer
    from medmesh.phi.protection import load_protection
    from medmesh.platform import native

    with tempfile.TemporaryDirectory(prefix="medmesh-bench-keys-") as keys:
        preparer = LinePreparer(load_protection(_settings(Path(keys), "sqlite+medmesh://")), 64)
    _compile_validator()
    files = [
        (p.stem, list(enumerate(p.read_bytes().splitlines()))) for p in folder.glob("*.ndjson")
    ]
    lines = sum(len(numbered) for _, numbered in files)
    now = datetime.now(UTC)
    best = float("inf")
    for _ in range(5):
        cpu = time.process_time()
        for kind, numbered in files:
            preparer.prepare(numbered, kind, ("http://phi.bench/fhir",), now)
        best = min(best, time.process_time() - cpu)
    status = native.status(NATIVE_GROUP)
    return {
        "compiled": bool(status and status.active),
        "cpu_us_per_resource": round(best / lines * 1e6, 1),
    }


def preparation_both_ways(folder: Path) -> dict[str, Any]:
    """:func:`preparation` with the compiled modules and with their sources, each in a process
    of its own (one process imports only one of them)."""
    report = {}
    for name, setting in (("compiled", "on"), ("sources", "off")):
        done = subprocess.run(
            [sys.executable, __file__, "--preparation", str(folder)],
            env={**os.environ, "MEDMESH_NATIVE": setting},
            capture_output=True,
            check=True,
        )
        report[name] = json.loads(done.stdout)
    report["ratio_compiled_to_sources"] = round(
        report["compiled"]["cpu_us_per_resource"] / report["sources"]["cpu_us_per_resource"], 3
    )
    return report


def control(folder: Path, passes: int = 5) -> dict[str, Any]:
    """orjson's parse and serialise of every line, ``passes`` times: the median pass."""
    lines = [line for path in folder.glob("*.ndjson") for line in path.read_bytes().splitlines()]
    walls, cpus = [], []
    for _ in range(passes):
        start, cpu = time.perf_counter(), time.process_time()
        for line in lines:
            orjson.dumps(orjson.loads(line))
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    wall, used = statistics.median(walls), statistics.median(cpus)
    return {
        "resources_per_s": round(len(lines) / wall),
        "cpu_us_per_resource": round(used / len(lines) * 1e6, 2),
    }


def in_controls(load: dict[str, Any], control_us: float) -> float:
    """A load's wall time a resource, in controls (a line's parse and serialise): a ratio
    that the machine's speed moves less than the rate itself."""
    return round(1e6 / float(load["resources_per_s"]) / control_us, 1)


async def ndjson(folder: Path, work: Path, resources: int, workers: int) -> dict[str, Any]:
    from medmesh.phi.bulk_import.standalone import import_directory
    from medmesh.phi.migrations import upgrade

    async with _database(work, f"ndjson-{workers}") as url:
        settings = _settings(work, url)
        await upgrade(settings.effective_database_url)
        compile_s = _compile_validator()
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        reports = await import_directory(settings, folder, workers=workers)
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        # The workers have been joined: their CPU is the children's.
        used_by_workers = _children_cpu() - children
    stored = sum(r.stored for r in reports)
    assert stored == resources, (stored, resources, [r.issues[:2] for r in reports if r.issues])
    return {
        "resources": stored,
        "workers": workers,
        "resources_per_s": round(stored / wall),
        "cpu_us_per_resource": round(used / stored * 1e6),
        "worker_cpu_us_per_resource": round(used_by_workers / stored * 1e6),
        "validator_compile_s_before_timing": compile_s,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _compile_validator() -> float:
    """Compile the R4 validator (once a process: a serving phi does it at start), outside the
    timed window; returns the seconds it took (0 when this process had compiled it)."""
    from medmesh.phi.fhir.r4 import shared_validator

    start = time.perf_counter()
    shared_validator()
    return round(time.perf_counter() - start, 3)


async def transaction(bundles: list[dict[str, Any]], work: Path, workers: int) -> dict[str, Any]:
    async with _database(work, f"transaction-{workers}") as url:
        children = _children_cpu()
        report = await _transaction(bundles, work, url, workers)
        # The app has stopped its workers: their CPU is the children's.
        used_by_workers = _children_cpu() - children
    report["worker_cpu_us_per_resource"] = round(used_by_workers / report["resources"] * 1e6)
    return report


async def _transaction(
    bundles: list[dict[str, Any]], work: Path, url: str, workers: int
) -> dict[str, Any]:
    import httpx

    from medmesh.phi.main import create_app
    from medmesh.phi.migrations import upgrade
    from medmesh.platform.testing import TokenFactory
    from medmesh.platform.tokens import TokenVerifier

    settings = _settings(work, url).model_copy(update={"import_workers": workers})
    await upgrade(settings.effective_database_url)
    tokens = TokenFactory("http://auth.bench")
    app = create_app(settings)
    app.state.verifier = TokenVerifier("http://auth.bench", "medmesh-phi", jwks=tokens.jwks())
    headers = {
        **tokens.headers("system/*.cruds", audience="medmesh-phi"),
        "Content-Type": "application/fhir+json",
        "Prefer": "return=minimal",
    }
    bodies = [orjson.dumps(b) for b in bundles]
    entries = sum(len(b["entry"]) for b in bundles)
    async with app.router.lifespan_context(app):
        _compile_validator()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://phi.bench", timeout=600
        ) as http:
            queue = list(reversed(bodies))

            async def worker() -> None:
                while queue:
                    response = await http.post("/fhir", content=queue.pop(), headers=headers)
                    assert response.status_code == 200, response.text[:300]

            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(4)))
            wall, used = time.perf_counter() - start, time.process_time() - cpu
    return {
        "resources": entries,
        "workers": workers,
        "resources_per_s": round(entries / wall),
        "cpu_us_per_resource": round(used / entries * 1e6),
    }


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="medmesh-bench-phi-import-"))
    folder = work / "ndjson"
    folder.mkdir()
    bundles = _copies()
    resources = _ndjson(bundles, folder)
    report: dict[str, Any] = {
        "database": "postgresql" if DATABASE_URL else "sqlite",
        "resources": resources,
    }
    report["control_orjson_loads_dumps"] = control(folder)
    report["preparation"] = preparation_both_ways(folder)
    report["ndjson_import"] = asyncio.run(ndjson(folder, work, resources, WORKERS))
    report["ndjson_import_without_workers"] = asyncio.run(ndjson(folder, work, resources, 0))
    report["transaction_import"] = asyncio.run(transaction(bundles, work, WORKERS))
    report["transaction_import_without_workers"] = asyncio.run(transaction(bundles, work, 0))
    # The machine's speed moves within a run too: the control again, after the loads.
    report["control_after_the_loads"] = control(folder)
    control_us = statistics.mean(
        report[name]["cpu_us_per_resource"]
        for name in ("control_orjson_loads_dumps", "control_after_the_loads")
    )
    for load in ("ndjson_import", "transaction_import"):
        for name in (load, f"{load}_without_workers"):
            report[name]["wall_per_resource_in_controls"] = in_controls(report[name], control_us)
    report["targets"] = {"ndjson_resources_per_s": 10000, "transaction_resources_per_s": 5000}
    return report


if __name__ == "__main__":
    if sys.argv[1:2] == ["--preparation"]:
        print(json.dumps(preparation(Path(sys.argv[2]))))
    else:
        print(json.dumps(main(), indent=2))
