"""Benchmark of delivery into phi-service (issue 15): Observations per second that the devices
service's outbox worker gets stored in phi-service, as a ratio to phi's own transaction import
of the same Bundles in the same run (the issue asks ≥ 0.9: the outbox must not be the
bottleneck).

phi-service runs as its own process (``medmesh serve phi``, one worker, SQLite, HS256 tokens).
Control: ``CONCURRENCY`` clients post transaction Bundles of ``ENTRIES`` Observations (the
devices templates' output, conditional creates) straight to phi. Measured: the devices service
in this process with ``BUNDLES`` Bundles waiting in its outbox (queued while phi was
unreachable), delivering them with ``DELIVERY_CONCURRENCY`` = ``CONCURRENCY`` until none waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.phi.bench_phi import _env as phi_env
from bench.phi.bench_phi import _token as phi_token
from bench.servers import free_port, medmesh_service

BUNDLES = int(os.environ.get("BENCH_DELIVERY_BUNDLES", "40"))
ENTRIES = int(os.environ.get("BENCH_DELIVERY_ENTRIES", "250"))
CONCURRENCY = int(os.environ.get("BENCH_DELIVERY_CONCURRENCY", "4"))


def _readings(prefix: str, device_id: str, patient: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "reading_id": f"{prefix}-{i}",
            "timestamp": "2026-03-01T08:00:00+00:00",
            "metric": "heart_rate",
            "value": 60 + i % 40,
            "unit": "/min",
            "device_id": device_id,
            "patient": patient,
        }
        for i in range(n)
    ]


async def _control(phi_url: str, headers: dict[str, str], patient: str) -> dict[str, Any]:
    from medmesh.devices.delivery.messages import reading_fields
    from medmesh.devices.ingest.validation import Reading
    from medmesh.devices.normalization.observations import transaction_bundle
    from medmesh.devices.normalization.templates import TemplateSet
    from medmesh.platform.db import utcnow

    templates = TemplateSet.load()
    now = utcnow()
    bundles = []
    for b in range(BUNDLES):
        readings = [
            reading_fields(
                Reading("dev_control", f"c{b}-{i}", now, "heart_rate", "/min", 70.0, None), patient
            )
            for i in range(ENTRIES)
        ]
        bundles.append(transaction_bundle(templates, {"readings": readings}))
    queue = list(bundles)
    async with httpx.AsyncClient(base_url=phi_url, headers=headers, timeout=300) as http:

        async def worker() -> None:
            while queue:
                bundle = queue.pop()
                response = await http.post("/fhir", json=bundle)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return {
        "observations_per_second": round(BUNDLES * ENTRIES / elapsed, 1),
        "seconds": round(elapsed, 2),
    }


async def _delivery(
    phi_url: str, headers: dict[str, str], patient: str, var_dir: Path
) -> dict[str, Any]:
    from sqlalchemy import text

    from medmesh.devices.components import DevicesState
    from medmesh.devices.config import DevicesSettings
    from medmesh.devices.main import create_app
    from medmesh.devices.migrations import upgrade
    from medmesh.devices.registry.schemas import AssignmentCreate, DeviceCreate
    from medmesh.platform.origin import RequestOrigin
    from medmesh.platform.service_client import ServiceClient

    database = f"sqlite+medmesh:///{var_dir / 'devices.db'}"
    await upgrade(database)
    settings = DevicesSettings(
        database_url=database,
        var_dir=var_dir,
        issuer="http://auth.bench",
        revocation_poll_seconds=0,
        phi_url="http://127.0.0.1:9",
        delivery_backoff_seconds=3600,
        delivery_max_entries=ENTRIES,
        delivery_concurrency=CONCURRENCY,
        delivery_poll_seconds=0.05,
        log_level="warning",
    )
    app = create_app(settings)
    origin = RequestOrigin(ip="bench")
    async with app.router.lifespan_context(app):
        state = DevicesState.of(app)
        components = state.devices
        async with state.database.unit_of_work() as session:
            row, _, _ = await components.registry.create(session, origin, DeviceCreate())
            await components.registry.assign(
                session,
                origin,
                row.id,
                AssignmentCreate(patient=patient, start="2020-01-01T00:00:00Z"),
            )
        for b in range(BUNDLES):
            entries = _readings(f"d{b}", row.id, patient, ENTRIES)
            for entry in entries:
                del entry["patient"]
            await components.intake.store(
                origin, entries, device_id=None, actor=None, transport="http"
            )
        # Wait until every message's failed first attempt is recorded (none in flight).
        while True:
            async with state.database.engine.connect() as conn:
                busy = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM outbox_messages"
                            " WHERE attempts = 0 OR locked_until IS NOT NULL"
                        )
                    )
                ).scalar_one()
            if busy == 0:
                break
            await asyncio.sleep(0.1)
        old, components.phi = (
            components.phi,
            ServiceClient(phi_url, headers=headers, timeout=300, retries=0),
        )
        await old.aclose()
        async with state.database.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE outbox_messages SET available_at = created_at, attempts = 0,"
                    " locked_until = NULL"
                )
            )
        started = time.perf_counter()
        components.intake.on_queued()
        while True:
            async with state.database.engine.connect() as conn:
                waiting = (
                    await conn.execute(
                        text("SELECT count(*) FROM outbox_messages WHERE delivered_at IS NULL")
                    )
                ).scalar_one()
            if waiting == 0:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
    return {
        "observations_per_second": round(BUNDLES * ENTRIES / elapsed, 1),
        "seconds": round(elapsed, 2),
    }


def main() -> dict[str, Any]:
    headers = {"Authorization": "Bearer " + phi_token(), "Content-Type": "application/fhir+json"}
    with tempfile.TemporaryDirectory() as tmp:
        env = phi_env(Path(tmp))
        with medmesh_service("phi", free_port(), env) as phi_url:
            created = httpx.post(
                phi_url + "/fhir/Patient",
                json={"resourceType": "Patient", "name": [{"family": "Bench"}]},
                headers=headers,
            ).json()
            patient = f"Patient/{created['id']}"
            devices_dir = Path(tmp) / "devices"
            devices_dir.mkdir()
            # Each half adds BUNDLES * ENTRIES Observations to phi: which one runs first is
            # a setting, so that a phi slowing down as it fills can be told apart.
            if os.environ.get("BENCH_DELIVERY_FIRST", "delivery") == "delivery":
                delivery = asyncio.run(_delivery(phi_url, headers, patient, devices_dir))
                control = asyncio.run(_control(phi_url, headers, patient))
            else:
                control = asyncio.run(_control(phi_url, headers, patient))
                delivery = asyncio.run(_delivery(phi_url, headers, patient, devices_dir))
    return {
        "delivery_through_outbox": delivery,
        "control_phi_transaction_import": control,
        "ratio_to_control": round(
            delivery["observations_per_second"] / control["observations_per_second"], 4
        ),
        "bundles": BUNDLES,
        "entries_per_bundle": ENTRIES,
        "concurrency": CONCURRENCY,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
