"""Delivery to a real phi-service: Observations in the patient's record with the right codes,
units and values, valid R4, each reading once however often its Bundle is sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from medmesh.devices.components import DevicesState
from medmesh.phi.fhir.r4 import validate
from medmesh.platform.outbox import enqueue
from medmesh.platform.service_client import ServiceClient
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import INGEST, DevicesHarness, devices_settings_for, run_devices
from tests.devices.live_phi import LivePhi, live_phi


@pytest.fixture
async def phi(
    tmp_path: Path, token_factory: TokenFactory, database_templates: DatabaseTemplates
) -> AsyncIterator[LivePhi]:
    async with live_phi(tmp_path / "phi", token_factory, database_templates) as served:
        yield served


@pytest.fixture
async def devices_to_phi(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
    phi: LivePhi,
) -> AsyncIterator[DevicesHarness]:
    settings = devices_settings_for(
        database_url,
        tmp_path,
        phi_url=phi.url,
        delivery_poll_seconds=0.05,
        delivery_backoff_seconds=0.05,
        delivery_max_backoff_seconds=0.2,
        delivery_max_entries=3,
        backlog_poll_seconds=0.05,
    )
    async with run_devices(settings, token_factory, database_templates) as harness:
        yield harness


async def use_phi(devices: DevicesHarness, client: ServiceClient) -> None:
    components = DevicesState.of(devices.app).devices
    old, components.phi = components.phi, client
    await old.aclose()


async def delivered(devices: DevicesHarness) -> None:
    """Wait until no Bundle waits (a property: how long it takes does not matter)."""
    deadline = time.monotonic() + 60
    while True:
        waiting = await devices.rows(
            "SELECT count(*) FROM outbox_messages WHERE delivered_at IS NULL AND dead_at IS NULL"
        )
        if waiting == [(0,)]:
            return
        assert time.monotonic() < deadline, f"{waiting[0][0]} Bundles still waiting"
        await asyncio.sleep(0.05)


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


READINGS: list[dict[str, Any]] = [
    {"reading_id": "hr", "metric": "heart_rate", "value": 72, "unit": "/min"},
    {
        "reading_id": "bp",
        "metric": "blood_pressure",
        "value": {"systolic": 121, "diastolic": 79},
        "unit": "mm[Hg]",
    },
    {"reading_id": "t", "metric": "body_temperature", "value": 100.4, "unit": "[degF]"},
    {"reading_id": "g", "metric": "glucose", "value": 5.5, "unit": "mmol/L"},
    {"reading_id": "w", "metric": "body_weight", "value": 154, "unit": "[lb_av]"},
]


async def test_readings_become_observations_in_phi(
    devices_to_phi: DevicesHarness, phi: LivePhi
) -> None:
    devices = devices_to_phi
    await use_phi(devices, phi.client())
    patient = await phi.patient()
    device = await devices.assigned(patient, start="2026-01-01T00:00:00Z")
    unassigned = await devices.register()
    entries = [
        {**r, "device_id": device["id"], "timestamp": "2026-03-01T08:00:00Z"} for r in READINGS
    ]
    entries.append(
        {**READINGS[0], "device_id": unassigned["id"], "timestamp": "2026-03-01T08:00:00Z"}
    )
    body = await devices.ok(
        "POST", "/v1/readings", json={"readings": entries}, headers=devices.headers(INGEST)
    )
    assert body["stored"] == 6
    await delivered(devices)

    observations = await phi.search("Observation", subject=patient)
    assert len(observations) == 5
    for observation in observations:
        assert validate(observation) == [], observation
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert sorted(by_code) == ["2339-0", "29463-7", "8310-5", "85354-9", "8867-4"]
    assert by_code["8867-4"]["valueQuantity"] == {
        "value": 72,
        "unit": "beats/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert by_code["8310-5"]["valueQuantity"]["value"] == 38.0
    assert by_code["8310-5"]["valueQuantity"]["code"] == "Cel"
    assert by_code["2339-0"]["valueQuantity"]["value"] == 99
    assert by_code["29463-7"]["valueQuantity"]["value"] == 69.85
    panel = by_code["85354-9"]
    assert [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in panel["component"]
    ] == [
        ("8480-6", 121),
        ("8462-4", 79),
    ]
    devices_in_phi = await phi.search("Device", identifier=f"urn:medmesh:device|{device['id']}")
    assert len(devices_in_phi) == 1
    assert devices_in_phi[0]["id"] == device["id"].replace("_", "-")
    assert devices_in_phi[0]["identifier"] == [
        {"system": "urn:medmesh:device", "value": device["id"]}
    ]
    assert devices_in_phi[0]["manufacturer"] == "Acme"
    for observation in observations:
        assert observation["device"]["reference"] == f"Device/{devices_in_phi[0]['id']}"
        assert observation["subject"] == {"reference": patient}
    # Two Bundles (at most three readings each); the unassigned device's reading stays here.
    bundles = "SELECT count(*) FROM outbox_messages WHERE topic = 'devices.observations'"
    assert await devices.rows(bundles) == [(2,)]
    metrics = (await devices.http.get("/metrics")).text
    assert metric_value(metrics, "medmesh_devices_observations_delivered_total") == 5


async def test_a_bundle_sent_again_creates_nothing_twice(
    devices_to_phi: DevicesHarness, phi: LivePhi
) -> None:
    devices = devices_to_phi
    await use_phi(devices, phi.client())
    patient = await phi.patient()
    device = await devices.assigned(patient)
    entries = [{**r, "timestamp": "2026-03-01T08:00:00Z"} for r in READINGS[:3]]
    await devices.ok(
        "POST",
        f"/v1/devices/{device['id']}/readings",
        json={"readings": entries},
        headers={"X-Device-Key": device["credential"]["key"]},
    )
    await delivered(devices)
    # As if phi's answer had been lost: the worker sends the same Bundle again.
    await devices.rows("UPDATE outbox_messages SET delivered_at = NULL RETURNING id")
    DevicesState.of(devices.app).devices.intake.on_queued()
    await delivered(devices)
    observations = await phi.search("Observation", subject=patient)
    assert sorted(o["identifier"][0]["value"] for o in observations) == sorted(
        f"{device['id']}:{r['reading_id']}" for r in READINGS[:3]
    )
    assert len(await phi.search("Device")) == 1
    assert len(observations) == 3


async def test_readings_wait_while_phi_is_down_and_arrive_once(
    devices_to_phi: DevicesHarness, phi: LivePhi
) -> None:
    devices = devices_to_phi
    await use_phi(devices, ServiceClient("http://127.0.0.1:9", retries=0))
    patient = await phi.patient()
    device = await devices.assigned(patient)
    # phi unreachable: the Bundles stay queued and are retried with backoff.
    entries = [
        {
            "reading_id": f"r{i}",
            "metric": "heart_rate",
            "value": 60 + i,
            "unit": "/min",
            "timestamp": "2026-03-01T08:00:00Z",
        }
        for i in range(7)
    ]
    await devices.ok(
        "POST",
        f"/v1/devices/{device['id']}/readings",
        json={"readings": entries},
        headers={"X-Device-Key": device["credential"]["key"]},
    )
    deadline = time.monotonic() + 60
    while True:
        attempts = await devices.rows("SELECT min(attempts) FROM outbox_messages")
        if attempts[0][0] >= 2:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    metrics = (await devices.http.get("/metrics")).text
    # Three Bundles of readings and the device's own message.
    assert metric_value(metrics, "medmesh_devices_delivery_backlog_bundles") == 4
    assert metric_value(metrics, "medmesh_devices_delivery_lag_seconds") > 0
    assert await phi.search("Observation", subject=patient) == []

    await use_phi(devices, phi.client())
    await delivered(devices)
    observations = await phi.search("Observation", subject=patient)
    assert sorted(o["valueQuantity"]["value"] for o in observations) == list(range(60, 67))
    await asyncio.sleep(0.2)
    metrics = (await devices.http.get("/metrics")).text
    assert metric_value(metrics, "medmesh_devices_delivery_backlog_bundles") == 0


async def test_a_bundle_queued_with_its_values_inline_is_still_delivered(
    devices_to_phi: DevicesHarness, phi: LivePhi
) -> None:
    """Messages queued before they named their readings by key carry the values themselves."""
    devices = devices_to_phi
    await use_phi(devices, phi.client())
    patient = await phi.patient()
    device = await devices.assigned(patient)
    fields = {
        "device_id": device["id"],
        "reading_id": "inline-1",
        "ts": "2026-03-01T08:00:00+00:00",
        "metric": "heart_rate",
        "unit": "/min",
        "value": 64.0,
        "components": None,
        "patient": patient,
    }
    async with devices.database.unit_of_work() as session:
        await enqueue(
            session,
            topic="devices.observations",
            destination=phi.url + "/fhir",
            payload={"readings": [fields]},
        )
    DevicesState.of(devices.app).devices.intake.on_queued()
    await delivered(devices)
    observations = await phi.search("Observation", subject=patient)
    assert [(o["identifier"][0]["value"], o["valueQuantity"]["value"]) for o in observations] == [
        (f"{device['id']}:inline-1", 64)
    ]


async def test_an_ingest_only_replica_queues_and_a_delivering_one_sends(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
    phi: LivePhi,
) -> None:
    """``DELIVERY_ENABLED=false``: the replica stores and queues; one with delivery sends."""
    patient = await phi.patient()
    ingest_only = devices_settings_for(
        database_url, tmp_path / "a", phi_url=phi.url, delivery_enabled=False
    )
    async with run_devices(ingest_only, token_factory, database_templates) as devices:
        device = await devices.assigned(patient)
        entries = [{**r, "timestamp": "2026-03-01T08:00:00Z"} for r in READINGS[:2]]
        await devices.ok(
            "POST",
            f"/v1/devices/{device['id']}/readings",
            json={"readings": entries},
            headers={"X-Device-Key": device["credential"]["key"]},
        )
        queued = await devices.rows(
            "SELECT count(*), sum(attempts) FROM outbox_messages "
            "WHERE topic IN ('devices.observations', 'devices.device')"
        )
    assert queued == [(2, 0)]  # the Device and one Bundle, never attempted
    assert await phi.search("Observation", subject=patient) == []

    delivering = devices_settings_for(
        database_url, tmp_path / "b", phi_url=phi.url, delivery_poll_seconds=0.05
    )
    async with run_devices(delivering, token_factory) as devices:
        await use_phi(devices, phi.client())
        devices.app.state.devices.intake.on_queued()
        await delivered(devices)
    observations = await phi.search("Observation", subject=patient)
    assert sorted(o["identifier"][0]["value"] for o in observations) == [
        f"{device['id']}:bp",
        f"{device['id']}:hr",
    ]
