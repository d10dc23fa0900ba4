"""``POST /v1/mqtt/authenticate``: a broker's HTTP authentication of connecting devices (EMQX's
request and answer shape). A device with a live key of its own is allowed with an ACL for its own
topic only; a wrong, revoked or other device's key, or a device no longer active, is denied; a
user name that is no device id is left to the broker's other authenticators."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import DevicesHarness, devices_settings_for, run_devices

SECRET = "broker-shared-secret-for-the-test"
BROKER = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
async def devices(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[DevicesHarness]:
    settings = devices_settings_for(database_url, tmp_path, mqtt_auth_secret=SECRET)
    async with run_devices(settings, token_factory, database_templates) as harness:
        yield harness


async def ask(devices: DevicesHarness, username: str, password: str, **kw: Any) -> Any:
    response = await devices.http.post(
        "/v1/mqtt/authenticate",
        json={"username": username, "password": password, "clientid": "c1"},
        headers=kw.get("headers", BROKER),
    )
    assert response.status_code == kw.get("status", 200), response.text
    return response.json()


async def test_a_device_with_its_key_may_publish_on_its_own_topic_only(
    devices: DevicesHarness,
) -> None:
    device = await devices.register()
    before = int(time.time())
    answer = await ask(devices, device["id"], device["credential"]["key"])
    expire_at = answer.pop("expire_at")
    assert before + 3600 <= expire_at <= int(time.time()) + 3600
    assert answer == {
        "result": "allow",
        "is_superuser": False,
        "acl": [
            {
                "permission": "allow",
                "action": "publish",
                "topic": f"medmesh/devices/{device['id']}/readings",
            },
            {"permission": "deny", "action": "all", "topic": "#"},
        ],
    }


async def test_wrong_revoked_or_another_devices_key_and_inactive_devices_are_denied(
    devices: DevicesHarness,
) -> None:
    mine, theirs = await devices.register(), await devices.register(serial_number="SN-2")
    key = mine["credential"]["key"]
    assert await ask(devices, mine["id"], "mdk_wrong") == {"result": "deny", "is_superuser": False}
    assert await ask(devices, mine["id"], theirs["credential"]["key"]) == {
        "result": "deny",
        "is_superuser": False,
    }
    await devices.ok("PATCH", f"/v1/devices/{mine['id']}", json={"status": "inactive"})
    assert (await ask(devices, mine["id"], key))["result"] == "deny"
    await devices.ok("PATCH", f"/v1/devices/{mine['id']}", json={"status": "active"})
    assert (await ask(devices, mine["id"], key))["result"] == "allow"
    await devices.ok("DELETE", f"/v1/devices/{mine['id']}/keys/{mine['credential']['id']}")
    assert (await ask(devices, mine["id"], key))["result"] == "deny"
    # A user name that is no device id: the broker's own users decide (e.g. the subscriber).
    assert await ask(devices, "medmesh-devices", "anything") == {
        "result": "ignore",
        "is_superuser": False,
    }


async def test_only_the_broker_with_the_secret_may_ask(devices: DevicesHarness) -> None:
    device = await devices.register()
    key = device["credential"]["key"]
    for headers in ({}, {"Authorization": "Bearer not-the-secret"}, {"Authorization": SECRET}):
        refused = await ask(devices, device["id"], key, headers=headers, status=401)
        assert refused["code"] == "invalid_broker_secret"
        assert refused["detail"] == "the broker's secret is missing or wrong"


async def test_without_a_secret_the_endpoint_is_off(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    settings = devices_settings_for(database_url, tmp_path)
    async with run_devices(settings, token_factory, database_templates) as devices:
        off = await ask(devices, "dev_x", "mdk_x", status=404)
        assert off["code"] == "broker_auth_disabled"
