"""Benchmark of the medical-device service's MQTT ingest (issue 15): QoS 1 messages, one reading
each (as a device sends them), stored durably by the service's subscriber (it acknowledges a
message only after the transaction holding its reading commits).

The service first makes its persistent session and is stopped; ``BENCH_MQTT_MESSAGES`` messages
are then published and queued by the broker for that session; the service is started again and
messages/s is how fast it drains them into the database (from the first new reading stored to
the last), so the publisher's own speed does not enter the figure. Zero loss: every published
reading id is stored, once.

Control in the same run, the same way: a bare subscriber (``bench/devices/mqtt_control.py``)
with the same kind of session, parsing and acknowledging each message with no validation and no
database. Subscribers run pinned to core 0, the publisher on core 1; the broker is a Mosquitto
of the benchmark's own (``BENCH_MQTT_URL`` names another) and floats.
Target (the issue): ≥ 4,000 messages/s with zero loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.devices.bench_devices import _register, service_env
from bench.loadgen import process_cpu_seconds
from bench.servers import BIN, ROOT, SERVER_PIDS, _pin, free_port, uvicorn_app

MESSAGES = int(os.environ.get("BENCH_MQTT_MESSAGES", "20000"))
IN_FLIGHT = int(os.environ.get("BENCH_MQTT_IN_FLIGHT", "500"))
#: A broker of the benchmark's own (empty) or another one, which must not drop queued QoS 1
#: messages (Mosquitto's default ``max_queued_messages 1000`` drops the rest of a backlog).
BROKER = os.environ.get("BENCH_MQTT_URL", "")


def _broker() -> tuple[str, int]:
    url = urlsplit(BROKER)
    return url.hostname or "127.0.0.1", url.port or 1883


@contextlib.contextmanager
def _own_broker(folder: Path) -> Iterator[str]:
    """Mosquitto on a free port, configured as docs/devices.md recommends for QoS 1 ingest."""
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 1000000\nmax_inflight_messages 0\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("mosquitto did not listen") from None
                time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def _publish(topic: str, device_ids: list[str], count: int, prefix: str) -> float:
    """Publish ``count`` one-reading messages with QoS 1 (each awaited until the broker's PUBACK,
    ``IN_FLIGHT`` at once); the ``time.monotonic()`` the first was sent."""
    host, port = _broker()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    payloads = [
        (
            topic.replace("+", device_ids[n % len(device_ids)]),
            orjson.dumps(
                {
                    "reading_id": f"{prefix}-{n}",
                    "timestamp": "2026-03-01T00:00:00+00:00",
                    "metric": "heart_rate",
                    "value": 60 + n % 40,
                    "unit": "/min",
                }
            ),
        )
        for n in range(count)
    ]
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with aiomqtt.Client(
        host,
        port,
        protocol=aiomqtt.ProtocolVersion.V5,
        max_inflight_messages=IN_FLIGHT,
    ) as client:

        async def one(topic_name: str, body: bytes) -> None:
            async with gate:
                await client.publish(topic_name, body, qos=1)

        started = time.monotonic()
        await asyncio.gather(*(one(t, b) for t, b in payloads))
    return started


def _stored(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])


def _wait_subscribed(url: str) -> None:
    """Readiness is about HTTP; the subscriber says it holds its session in a metric."""
    while "medmesh_devices_mqtt_connected 1.0" not in httpx.get(url + "/metrics").text:
        time.sleep(0.05)


def _service_run(db: Path, env: dict[str, str], topic: str) -> tuple[dict[str, Any], list[str]]:
    """Make the session (and warm up), stop the service, queue ``MESSAGES`` at the broker, start
    the service again and time how fast it drains them into the database."""
    warm = 500
    with uvicorn_app("medmesh.devices.main:app", free_port(), env, ready_path="/readyz") as url:
        device_ids = _register(url)
        _wait_subscribed(url)
        asyncio.run(_publish(topic, device_ids, warm, "warm"))
        while _stored(db) < warm:
            time.sleep(0.05)
    asyncio.run(_publish(topic, device_ids, MESSAGES, "m"))
    port = free_port()
    with uvicorn_app("medmesh.devices.main:app", port, env, ready_path="/readyz"):
        pid = SERVER_PIDS[port]
        deadline = time.monotonic() + 600
        while (count := _stored(db)) == warm and time.monotonic() < deadline:
            time.sleep(0.005)
        started, first_count, cpu_before = time.monotonic(), count, process_cpu_seconds(pid)
        while (count := _stored(db)) < MESSAGES + warm and time.monotonic() < deadline:
            time.sleep(0.01)
        finished, cpu = time.monotonic(), process_cpu_seconds(pid) - cpu_before
        time.sleep(1.0)  # anything stored twice would show now
        stored = _stored(db) - warm
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        distinct = conn.execute(
            "SELECT count(DISTINCT reading_id) FROM readings WHERE reading_id LIKE 'm-%'"
        ).fetchone()[0]
    drained = count - first_count
    return {
        "messages_per_second": round(drained / (finished - started), 1),
        "messages": MESSAGES,
        "stored": stored,
        "distinct_stored": int(distinct),
        "lost": MESSAGES - int(distinct),
        "seconds": round(finished - started, 2),
        "server_cpu_us_per_message": round(cpu / drained * 1e6, 1) if drained else None,
    }, device_ids


def _control_run(device_ids: list[str]) -> dict[str, Any]:
    host, port = _broker()
    run = uuid.uuid4().hex[:8]
    topic = f"bench-control-{run}/devices/+/readings"

    def control(count: int) -> subprocess.Popen[str]:
        cmd = [
            str(BIN / "python"),
            str(ROOT / "bench" / "devices" / "mqtt_control.py"),
            host,
            str(port),
            f"$share/control-{run}/{topic}",
            f"control-{run}",
            str(count),
        ]
        return subprocess.Popen(_pin(cmd), stdout=subprocess.PIPE, text=True)

    session = control(0)
    session.communicate(timeout=60)
    asyncio.run(_publish(topic, device_ids, MESSAGES, "c"))
    process = control(MESSAGES)
    out, _ = process.communicate(timeout=600)
    _, first, last, received = out.split()
    return {
        "messages_per_second": round(int(received) / (float(last) - float(first)), 1),
        "messages": int(received),
        "seconds": round(float(last) - float(first), 2),
    }


def main() -> dict[str, Any]:
    global BROKER
    if BROKER:
        return _main()
    with tempfile.TemporaryDirectory() as tmp, _own_broker(Path(tmp)) as url:
        BROKER = url
        try:
            return _main()
        finally:
            BROKER = ""


def _main() -> dict[str, Any]:
    from medmesh.devices.migrations import upgrade

    run = uuid.uuid4().hex[:8]
    topic = f"bench-{run}/devices/+/readings"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "devices.db"
        database = f"sqlite+medmesh:///{db}"
        asyncio.run(upgrade(database))
        env = {
            **service_env(database, tmp),
            "MEDMESH_DEVICES_MQTT_URL": BROKER,
            "MEDMESH_DEVICES_MQTT_TOPIC": topic,
            "MEDMESH_DEVICES_MQTT_GROUP": f"bench-{run}",
            "MEDMESH_DEVICES_MQTT_CLIENT_ID": f"bench-devices-{run}",
        }
        service, device_ids = _service_run(db, env, topic)
    control = _control_run(device_ids)
    return {
        "mqtt_qos1_ingest": service,
        "control_bare_subscriber": control,
        "ratio_to_control": round(
            service["messages_per_second"] / control["messages_per_second"], 4
        ),
        "in_flight": IN_FLIGHT,
        "broker": "own Mosquitto" if not os.environ.get("BENCH_MQTT_URL") else "BENCH_MQTT_URL",
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
