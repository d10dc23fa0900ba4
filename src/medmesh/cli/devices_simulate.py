"""``medmesh devices simulate``: register simulated devices and stream their vitals.

The devices are registered through the medical-device service's registry API with an admin
token (as ``medmesh up`` seeds its demo oximeter), each getting its own key; their readings then
go to ``POST /v1/devices/{id}/readings`` with that key, or, with ``--mqtt``, to each device's
MQTT topic. A progress line follows every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from urllib.parse import urlsplit

import httpx
import typer

from medmesh.cli.devices_demo import _answer
from medmesh.cli.services import echo

devices_app = typer.Typer(help="medical-device service commands.", no_args_is_help=True)

#: readings a simulated device sends a tick: four vitals, and a blood pressure every tenth tick
READINGS_PER_TICK = 4.1


def register_devices(base_url: str, token: str, count: int) -> list[tuple[str, str]]:
    """Register ``count`` simulated devices; their ids and keys (the keys are shown only now)."""
    run = secrets.token_hex(4)
    made = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as http:
        for number in range(count):
            body = {
                "manufacturer": "medmesh simulator",
                "model": "Simulated vital signs monitor",
                "serial_number": f"SIM-{run}-{number + 1}",
            }
            device = _answer(http.post("/v1/devices", json=body), 201)
            made.append((str(device["id"]), str(device["credential"]["key"])))
    return made


def ticks_for(devices: int, rate: float, seconds: float) -> int:
    """Rounds of readings that fill about ``seconds`` at ``rate`` readings per second."""
    return max(1, math.ceil(seconds * rate / (devices * READINGS_PER_TICK)))


async def _stream(
    url: str, mqtt: str | None, topic: str, pairs: list[tuple[str, str]], rate: float, ticks: int
) -> tuple[int, int, int]:
    from medmesh.devices.simulation.streaming import (
        HttpSender,
        MqttSender,
        Progress,
        Sender,
        SimulatedDevice,
        simulate,
    )

    devices = [SimulatedDevice(device_id, key) for device_id, key in pairs]

    def progress(state: Progress) -> None:
        if mqtt is None:
            echo(
                f"sent {state.sent} readings, {state.stored} stored, {state.rejected} rejected "
                f"({state.rate:.0f}/s)"
            )
        else:
            echo(f"published {state.sent} readings ({state.rate:.0f}/s)")

    async def run(sender: Sender) -> Progress:
        return await simulate(devices, sender, rate=rate, ticks=ticks, on_progress=progress)

    if mqtt is None:
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            done = await run(HttpSender(http))
    else:
        import aiomqtt

        parts = urlsplit(mqtt)
        async with contextlib.AsyncExitStack() as stack:
            # Each device connects as itself: its id as the user name, its key as the password.
            clients = {
                device.device_id: await stack.enter_async_context(
                    aiomqtt.Client(
                        parts.hostname or "127.0.0.1",
                        parts.port or 1883,
                        username=device.device_id,
                        password=device.key,
                        protocol=aiomqtt.ProtocolVersion.V5,
                    )
                )
                for device in devices
            }
            done = await run(MqttSender(clients, topic))
    return done.sent, done.stored, done.rejected


@devices_app.command("simulate")
def devices_simulate(
    devices: int = typer.Option(3, "--devices", min=1, max=10_000, help="devices to simulate"),
    rate: float = typer.Option(20.0, "--rate", min=0, help="readings a second (0: no pacing)"),
    seconds: float = typer.Option(30.0, "--seconds", min=0, help="about how long to run"),
    url: str = typer.Option("http://127.0.0.1:8005", "--url", help="the devices service"),
    mqtt: str | None = typer.Option(None, "--mqtt", help="publish to this broker instead"),
    topic: str = typer.Option("medmesh/devices/+/readings", "--topic", help="MQTT topic"),
    token: str | None = typer.Option(
        None, "--token", envvar="MEDMESH_TOKEN", help="a token with devices:write (registers)"
    ),
    device: list[str] = typer.Option(
        [], "--device", help="ID:KEY of a registered device to use instead of registering"
    ),
) -> None:
    """Stream realistic vitals (with now-and-then desaturation, tachycardia and fever episodes)
    from simulated devices into the medical-device service, printing progress each round. With
    --device given, those devices send; otherwise --devices new ones are registered with --token.
    At --rate 0 the run is --seconds worth of readings at 20 a second, sent unpaced."""
    if device:
        pairs = []
        for given in device:
            device_id, _, key = given.partition(":")
            if not device_id or not key:
                typer.echo(f"--device {given.split(':')[0]}:…: expected ID:KEY", err=True)
                raise typer.Exit(2)
            pairs.append((device_id, key))
    elif token:
        try:
            pairs = register_devices(url, token, devices)
        except (RuntimeError, httpx.HTTPError) as error:
            typer.echo(f"devices: not registered ({error})", err=True)
            raise typer.Exit(1) from error
        echo(f"registered {len(pairs)} simulated devices at {url}")
    else:
        typer.echo("give --token (or MEDMESH_TOKEN) to register devices, or --device", err=True)
        raise typer.Exit(2)
    ticks = ticks_for(len(pairs), rate or 20.0, seconds)
    try:
        sent, stored, rejected = asyncio.run(_stream(url, mqtt, topic, pairs, rate, ticks))
    except httpx.HTTPStatusError as error:
        typer.echo(f"devices: refused ({error.response.status_code})", err=True)
        raise typer.Exit(1) from error
    if mqtt is None:
        echo(f"done: {sent} readings sent to {url}, {stored} stored, {rejected} rejected")
    else:
        echo(f"done: {sent} readings published to {mqtt} (QoS 1, acknowledged by the broker)")
