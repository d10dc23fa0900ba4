"""medical-device with auth-service and phi-service, each a real process, and the real MQTT broker.

A device is registered and assigned to a patient stored in phi; its readings, sent over HTTP with
its key and published over MQTT, become Observations in phi's search with the right codes, units
and values, valid R4. phi killed while readings stream and started again: every reading arrives
exactly once. The devices service gets its tokens for phi from auth with its own client, as under
`medmesh up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
import orjson
import pytest

from medmesh.phi.fhir.r4 import validate
from tests.e2e.test_phi_process import free_port

pytestmark = pytest.mark.e2e

MEDMESH = [sys.executable, "-m", "medmesh.cli"]
ADMIN_PASSWORD = "e2e admin password, long enough"
FHIR_JSON = {"Accept": "application/fhir+json"}
TS = "2026-03-01T08:00:00Z"


@dataclass
class Process:
    """One `medmesh serve NAME` process on a fixed port, which can be killed and started again."""

    name: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*MEDMESH, "serve", self.name, "--port", str(self.port), "--migrate"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self) -> None:
        """Wait for readiness for at most 60 s (a generous bound for a busy machine)."""
        deadline = time.monotonic() + 60
        while not self.ready():
            assert self.process is not None
            assert self.process.poll() is None, f"{self.name} exited"
            assert time.monotonic() < deadline, f"{self.name} not ready within 60 s"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Stack:
    auth: Process
    phi: Process
    devices: Process
    topic: str
    mqtt_url: str
    admin: dict[str, str] = field(default_factory=dict)

    async def ok(self, method: str, url: str, status: int, **kw: Any) -> Any:
        async with httpx.AsyncClient(timeout=60, headers=self.admin) as http:
            response = await http.request(method, url, **kw)
        assert response.status_code == status, response.text
        return response.json()

    async def patient(self) -> str:
        created = await self.ok(
            "POST",
            self.phi.url + "/fhir/Patient",
            201,
            json={"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Ada"]}]},
        )
        return f"Patient/{created['id']}"

    async def assigned_device(self, patient: str) -> dict[str, Any]:
        """A new pulse oximeter assigned to ``patient`` (with ``credential.key``)."""
        device: dict[str, Any] = await self.ok(
            "POST",
            self.devices.url + "/v1/devices",
            201,
            json={"manufacturer": "Acme", "model": "Pulse 2", "serial_number": uuid.uuid4().hex},
        )
        await self.ok(
            "POST",
            f"{self.devices.url}/v1/devices/{device['id']}/assignments",
            201,
            json={"patient": patient, "start": "2026-01-01T00:00:00Z"},
        )
        return device

    async def send(self, device: dict[str, Any], *readings: dict[str, Any]) -> None:
        """POST ``readings`` with the device's key; each answered as stored."""
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.post(
                f"{self.devices.url}/v1/devices/{device['id']}/readings",
                json={"readings": list(readings)},
                headers={"X-Device-Key": device["credential"]["key"]},
            )
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == len(readings), response.text

    @contextlib.asynccontextmanager
    async def broker(self) -> AsyncIterator[aiomqtt.Client]:
        url = urlsplit(self.mqtt_url)
        async with aiomqtt.Client(
            url.hostname or "127.0.0.1", url.port or 1883, protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            yield client

    async def observations(self, patient: str, count: int) -> list[dict[str, Any]]:
        """The patient's Observations once phi holds at least ``count`` (waited for at most 120 s:
        the property checked is what arrives, not how fast)."""
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=30, headers=self.admin) as http:
                    response = await http.get(
                        self.phi.url + "/fhir/Observation",
                        params={"subject": patient, "_count": "1000"},
                        headers=FHIR_JSON,
                    )
                if response.status_code == 200:
                    found = [e["resource"] for e in response.json().get("entry", [])]
                    if len(found) >= count:
                        return found
            assert time.monotonic() < deadline, f"fewer than {count} Observations in phi"
            await asyncio.sleep(0.2)

    async def delivered(self) -> None:
        """Wait until no Bundle waits at the devices service (at most 120 s)."""
        deadline = time.monotonic() + 120
        while True:
            async with httpx.AsyncClient(timeout=30) as http:
                metrics = (await http.get(self.devices.url + "/metrics")).text
            if "\nmedmesh_devices_delivery_backlog_bundles 0.0" in metrics:
                return
            assert time.monotonic() < deadline, "Bundles still wait for phi"
            await asyncio.sleep(0.2)


@pytest.fixture
async def stack(tmp_path: Path, mqtt_url: str) -> AsyncIterator[Stack]:
    ports = {name: free_port() for name in ("auth", "phi", "devices")}
    auth_url = f"http://127.0.0.1:{ports['auth']}"
    run = uuid.uuid4().hex[:12]
    topic = f"e2e-{run}/devices/+/readings"
    base = {
        k: v
        for k, v in os.environ.items()  # noqa: TID251 - the processes inherit PATH, HOME ...
        if not k.startswith("MEDMESH_")
    }

    def env(name: str, **values: str) -> dict[str, str]:
        prefix = f"MEDMESH_{name.upper()}_"
        common = {
            "VAR_DIR": str(tmp_path),
            "ISSUER": auth_url,
            "DRAIN_SECONDS": "0",
            "LOG_FILE": str(tmp_path / f"{name}.log"),
        }
        return {**base, **{prefix + k: v for k, v in {**common, **values}.items()}}

    auth = Process(
        "auth",
        ports["auth"],
        env(
            "auth",
            ARGON2_MEMORY_KIB="1024",
            ARGON2_TIME_COST="1",
            BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD,
        ),
    )
    processes = [auth]
    try:
        auth.start()
        await asyncio.to_thread(auth.wait_ready)
        boot = await asyncio.to_thread(
            subprocess.run,
            [*MEDMESH, "admin", "bootstrap"],
            env=auth.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert boot.returncode == 0, boot.stderr
        secrets = dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))
        phi = Process("phi", ports["phi"], env("phi"))
        devices = Process(
            "devices",
            ports["devices"],
            env(
                "devices",
                PHI_URL=f"http://127.0.0.1:{ports['phi']}",
                PHI_CLIENT_SECRET=secrets["svc-devices"],
                DELIVERY_POLL_SECONDS="0.1",
                DELIVERY_BACKOFF_SECONDS="0.2",
                DELIVERY_MAX_BACKOFF_SECONDS="1",
                MQTT_URL=mqtt_url,
                MQTT_TOPIC=topic,
                MQTT_GROUP=f"group-{run}",
                MQTT_CLIENT_ID=f"devices-{run}",
                MQTT_RECONNECT_SECONDS="0.1",
            ),
        )
        processes += [phi, devices]
        for process in (phi, devices):
            process.start()
        for process in (phi, devices):
            await asyncio.to_thread(process.wait_ready)
        async with httpx.AsyncClient(timeout=60) as http:
            issued = await http.post(
                auth_url + "/oauth/token",
                data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
                auth=("medmesh-cli", secrets["medmesh-cli"]),
            )
        assert issued.status_code == 200, issued.text
        admin = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        yield Stack(auth, phi, devices, topic, mqtt_url, admin)
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(process.stop)


def reading(reading_id: str, metric: str, value: Any, unit: str) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "timestamp": TS,
        "metric": metric,
        "value": value,
        "unit": unit,
    }


async def test_readings_over_http_and_mqtt_become_observations_in_phi(stack: Stack) -> None:
    patient = await stack.patient()
    device = await stack.assigned_device(patient)
    await stack.send(
        device,
        reading("hr", "heart_rate", 72, "/min"),
        reading("bp", "blood_pressure", {"systolic": 121, "diastolic": 79}, "mm[Hg]"),
        reading("t", "body_temperature", 100.4, "[degF]"),
    )
    async with stack.broker() as broker:
        topic = stack.topic.replace("+", device["id"])
        await broker.publish(topic, orjson.dumps(reading("o2", "spo2", 97, "%")), qos=1)
        batch = {
            "readings": [
                reading("g", "glucose", 5.5, "mmol/L"),
                reading("w", "body_weight", 154, "[lb_av]"),
            ]
        }
        await broker.publish(topic, orjson.dumps(batch), qos=1)

    observations = await stack.observations(patient, 6)
    assert len(observations) == 6
    for observation in observations:
        assert validate(observation) == [], observation
        assert observation["subject"] == {"reference": patient}
        assert observation["status"] == "final"
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert sorted(by_code) == ["2339-0", "29463-7", "59408-5", "8310-5", "85354-9", "8867-4"]
    values = {
        code: (o["valueQuantity"]["value"], o["valueQuantity"]["code"])
        for code, o in by_code.items()
        if "valueQuantity" in o
    }
    assert values == {
        "8867-4": (72, "/min"),
        "8310-5": (38.0, "Cel"),
        "59408-5": (97, "%"),
        "2339-0": (99, "mg/dL"),
        "29463-7": (69.85, "kg"),
    }
    categories = {code: o["category"][0]["coding"][0]["code"] for code, o in by_code.items()}
    assert categories == {code: "vital-signs" for code in by_code} | {"2339-0": "laboratory"}
    panel = by_code["85354-9"]
    assert [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
        for c in panel["component"]
    ] == [("8480-6", 121, "mm[Hg]"), ("8462-4", 79, "mm[Hg]")]
    assert sorted(o["identifier"][0]["value"] for o in observations) == sorted(
        f"{device['id']}:{r}" for r in ("hr", "bp", "t", "o2", "g", "w")
    )
    # The Device the readings name is in phi too.
    device_ref = {o["device"]["reference"] for o in observations}
    assert len(device_ref) == 1
    shown = await stack.ok("GET", f"{stack.phi.url}/fhir/{device_ref.pop()}", 200)
    assert shown["identifier"] == [{"system": "urn:medmesh:device", "value": device["id"]}]


async def test_phi_killed_while_readings_stream_then_restarted_every_reading_arrives_once(
    stack: Stack,
) -> None:
    patient = await stack.patient()
    device = await stack.assigned_device(patient)
    topic = stack.topic.replace("+", device["id"])
    sent: list[str] = []

    async def stream(first: int, last: int) -> None:
        """Readings ``first``..``last - 1``: even ones over HTTP, odd ones over MQTT (QoS 1)."""
        async with stack.broker() as broker:
            for n in range(first, last):
                entry = reading(f"r{n}", "heart_rate", 40 + n, "/min")
                if n % 2:
                    await broker.publish(topic, orjson.dumps(entry), qos=1)
                else:
                    await stack.send(device, entry)
                sent.append(f"{device['id']}:r{n}")

    await stream(0, 40)
    await asyncio.to_thread(stack.phi.kill)
    await stream(40, 100)
    stack.phi.start()
    await asyncio.gather(stream(100, 140), asyncio.to_thread(stack.phi.wait_ready))

    await stack.observations(patient, len(sent))
    await stack.delivered()
    observations = await stack.observations(patient, len(sent))
    identifiers = [o["identifier"][0]["value"] for o in observations]
    assert len(identifiers) == 140
    assert sorted(identifiers) == sorted(sent)
    assert sorted(o["valueQuantity"]["value"] for o in observations) == list(range(40, 180))
