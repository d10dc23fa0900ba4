"""``medmesh devices simulate`` against a real medical-device service process: it registers its
devices with the token given (or uses the ones named), streams their vitals with a progress line
a round, and says plainly what was refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from medmesh.cli import app
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.cli.commands import invoke
from tests.deploy.live_service import running_service, tokens
from tests.devices.conftest import DevicesHarness, mqtt_devices, run_devices
from tests.devices.test_mqtt import stored, subscribed
from tests.devices.test_mqtt_broker_acl import Broker, broker, broker_settings, connect_as

__all__ = ["broker", "mqtt_devices"]  # the fixtures, used by name


@pytest.fixture(scope="module")
def devices_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_service("devices", tmp_path_factory.mktemp("devices")) as url:
        yield url


def token(scope: str = "devices:write") -> str:
    return tokens().token(scope, audience="medmesh-devices")


def simulate(*args: str) -> Result:
    return CliRunner().invoke(app, ["devices", "simulate", *args], env={"MEDMESH_TOKEN": ""})


def registered(url: str) -> list[dict[str, str]]:
    headers = {"Authorization": f"Bearer {token()}"}
    listed = httpx.get(f"{url}/v1/devices", headers=headers, params={"limit": 100}, timeout=30)
    found: list[dict[str, str]] = listed.json()["data"]
    return found


def test_it_registers_the_devices_and_every_reading_is_stored(devices_service: str) -> None:
    before = len(registered(devices_service))
    result = simulate(
        "--devices", "2", "--rate", "0", "--seconds", "4", "--url", devices_service,
        "--token", token(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"registered 2 simulated devices at {devices_service}"
    # 4 s at 20 readings/s over two devices: 10 rounds; each device sends four vitals a round
    # and a blood pressure in the first.
    progress = [line.split(" (")[0] for line in lines[1:-1]]
    assert len(progress) == 10
    assert progress[0] == "sent 10 readings, 10 stored, 0 rejected"
    assert progress[-1] == "sent 82 readings, 82 stored, 0 rejected"
    assert lines[-1] == f"done: 82 readings sent to {devices_service}, 82 stored, 0 rejected"
    made = registered(devices_service)[before:]
    assert [d["model"] for d in made] == ["Simulated vital signs monitor"] * 2
    assert [d["serial_number"].rsplit("-", 1)[1] for d in made] == ["1", "2"]


def test_named_devices_send_with_their_own_keys(devices_service: str) -> None:
    created = httpx.post(
        f"{devices_service}/v1/devices",
        headers={"Authorization": f"Bearer {token()}"},
        json={"manufacturer": "m", "model": "x", "serial_number": "NAMED-1"},
        timeout=30,
    ).json()
    pair = f"{created['id']}:{created['credential']['key']}"
    result = simulate("--device", pair, "--rate", "0", "--seconds", "1", "--url", devices_service)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        f"done: 21 readings sent to {devices_service}, 21 stored, 0 rejected"
    )

    wrong = simulate("--device", f"{created['id']}:not-its-key", "--url", devices_service)
    assert (wrong.exit_code, wrong.output) == (1, "devices: refused (401)\n")
    malformed = simulate("--device", "only-an-id", "--url", devices_service)
    assert (malformed.exit_code, malformed.output) == (
        2,
        "--device only-an-id:…: expected ID:KEY\n",
    )


def test_without_a_token_or_with_one_that_may_not_register_nothing_is_made(
    devices_service: str,
) -> None:
    before = registered(devices_service)
    missing = simulate("--url", devices_service)
    assert (missing.exit_code, missing.output) == (
        2,
        "give --token (or MEDMESH_TOKEN) to register devices, or --device\n",
    )
    refused = simulate("--url", devices_service, "--token", token("devices:read"))
    assert refused.exit_code == 1
    assert refused.output.startswith("devices: not registered (POST /v1/devices: 403 ")
    assert registered(devices_service) == before


async def test_over_mqtt_each_device_publishes_on_its_topic(mqtt_devices: DevicesHarness) -> None:
    devices = mqtt_devices
    device = await devices.assigned()
    pair = f"{device['id']}:{device['credential']['key']}"
    args = ["--device", pair, "--rate", "0", "--seconds", "1"]
    mqtt = ["--mqtt", devices.settings.mqtt_url, "--topic", devices.settings.mqtt_topic]
    result = await invoke(["devices", "simulate", *args, *mqtt], env={"MEDMESH_TOKEN": ""})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(" (")[0] for line in lines[:-1]] == [
        f"published {n} readings" for n in (5, 9, 13, 17, 21)
    ]
    assert lines[-1] == (
        f"done: 21 readings published to {devices.settings.mqtt_url} "
        "(QoS 1, acknowledged by the broker)"
    )
    rows = await stored(devices, 21)
    assert len(rows) == 21
    owners = await devices.rows("SELECT DISTINCT device_id FROM readings")
    assert owners == [(device["id"],)]


async def test_over_mqtt_each_device_connects_as_itself_to_a_broker_with_users(
    broker: Broker,
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    """With the broker set-up of docs/devices.md (a user per device, its own topic only), every
    simulated device publishes as itself and all its readings are stored (3 rounds of 4 vitals
    and a blood pressure in the first: 13 a device)."""
    settings = broker_settings(broker, database_url, tmp_path, "simulate")
    async with run_devices(settings, token_factory, database_templates) as devices:
        await subscribed(devices)
        made = [await devices.assigned(f"Patient/p{n}") for n in range(2)]
        for device in made:
            broker.add_user(device["id"], device["credential"]["key"])
        for device in made:  # Mosquitto reads its password file again on SIGHUP
            client = await connect_as(broker, device["id"], device["credential"]["key"])
            await client.__aexit__(None, None, None)
        pairs = [f"{d['id']}:{d['credential']['key']}" for d in made]
        args = ["--device", pairs[0], "--device", pairs[1], "--rate", "0", "--seconds", "1"]
        mqtt = ["--mqtt", settings.mqtt_url]
        result = await invoke(["devices", "simulate", *args, *mqtt], env={"MEDMESH_TOKEN": ""})
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == (
            f"done: 26 readings published to {settings.mqtt_url} (QoS 1, acknowledged by the broker)"
        )
        rows = await stored(devices, 26)
        assert len(rows) == 26
        owners = await devices.rows("SELECT device_id, count(*) FROM readings GROUP BY device_id")
        assert sorted(owners) == sorted((d["id"], 13) for d in made)
