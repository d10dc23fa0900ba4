"""What the manifests set is what the services read: known settings that load.

A misspelled or foreign variable (``MEDMESH_PHI_DATABASE_URL`` in synthetic's Job) is ignored by
the settings class, so the container silently runs on its default; and a combination the settings
class refuses (a phi URL without its client secret) stops the container at start. Both are caught
here, for every container of every service in both overlays and in compose.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from medmesh.cli.services import SERVICES as REGISTERED
from medmesh.platform.config import ServiceSettings
from tests.deploy.tools import DEPLOY, OVERLAYS, SERVICES, by_kind, containers, render_overlay

#: Stands in for a value that comes from a Secret (never committed).
FROM_SECRET = "value-from-the-secret"


def service_workloads(objects: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [
        by_kind(objects, "Deployment")[service],
        by_kind(objects, "Job")[f"{service}-migrate"],
    ]


def container_env(
    container: dict[str, Any], configmaps: dict[str, dict[str, Any]], *, with_secrets: bool
) -> dict[str, str]:
    """The MEDMESH_* variables a container starts with, as Kubernetes resolves them."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]].get("data", {}))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable.get("valueFrom", {}):
            if with_secrets:
                env[variable["name"]] = FROM_SECRET
            else:
                env.pop(variable["name"], None)
    return {name: value for name, value in env.items() if name.startswith("MEDMESH_")}


def unknown_settings(service: str, names: set[str]) -> list[str]:
    """The names that are neither ``MEDMESH_<SVC>_<setting>`` nor a shared ``MEDMESH_<setting>``."""
    own = {
        f"MEDMESH_{service.upper()}_{f.upper()}"
        for f in REGISTERED[service].settings_class().model_fields
    }
    shared = {f"MEDMESH_{f.upper()}" for f in ServiceSettings.model_fields}
    return sorted(names - own - shared)


def test_every_deployed_service_is_one_the_cli_knows() -> None:
    assert set(SERVICES) <= set(REGISTERED)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_a_container_gets_is_a_setting_of_its_service(
    overlay: str, service: str
) -> None:
    objects = render_overlay(overlay)
    configmaps = by_kind(objects, "ConfigMap")
    for workload in service_workloads(objects, service):
        for container in containers(workload):
            names = set(container_env(container, configmaps, with_secrets=True))
            assert unknown_settings(service, names) == [], workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_the_settings_of_every_container_load(
    overlay: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API pods with their Secrets' keys, the migration Job with only what it is given."""
    objects = render_overlay(overlay)
    configmaps = by_kind(objects, "ConfigMap")
    settings_class = REGISTERED[service].settings_class()
    for workload in service_workloads(objects, service):
        (container,) = containers(workload)
        env = container_env(container, configmaps, with_secrets=workload["kind"] == "Deployment")
        with monkeypatch.context() as patched:
            for name in [n for n in os.environ if n.startswith("MEDMESH_")]:  # noqa: TID251
                patched.delenv(name)
            for name, value in env.items():
                patched.setenv(name, value)
            settings = settings_class()
        assert settings.host == "0.0.0.0", workload["metadata"]["name"]
        for port in container.get("ports", []):
            assert settings.effective_port == port["containerPort"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_compose_sets_is_a_setting_of_its_service(service: str) -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    for name in (service, f"{service}-migrate"):
        names = {n for n in services[name]["environment"] if n.startswith("MEDMESH_")}
        assert unknown_settings(service, names) == [], name
