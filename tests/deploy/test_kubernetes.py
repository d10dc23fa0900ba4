"""The kustomize base and overlays: they render, validate and hold every service's objects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate.utils import latest_version

from medmesh.platform.config import SERVICE_PORTS
from tests.deploy.tools import (
    DEPLOY,
    OBSERVABILITY,
    OVERLAYS,
    SERVICES,
    VENV_BIN,
    by_kind,
    containers,
    find_tool,
    pod_spec,
    render_overlay,
    render_overlay_text,
    run,
)

KUBERNETES_VERSION = latest_version()
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
SECRET_LIKE = re.compile(r"(PASSWORD|SECRET|_KEY$|_KEYS$|DATABASE_URL|REDIS_URL|MQTT_URL|TOKEN)")


def test_there_is_a_dev_and_a_prod_overlay() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)
    assert "auth" in SERVICES


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(overlay: str, tmp_path: Path) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(render_overlay_text(overlay))
    objects = render_overlay(overlay)
    result = run(VENV_BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == len(objects), result.stdout


def test_kustomize_is_the_real_one() -> None:
    result = run(find_tool("kustomize"), "version")
    assert result.returncode == 0, result.stderr
    assert re.search(r"v5\.\d+\.\d+", result.stdout), result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_medmesh_namespace(overlay: str) -> None:
    for obj in render_overlay(overlay):
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == "medmesh", obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_committed(overlay: str) -> None:
    objects = render_overlay(overlay)
    assert by_kind(objects, "Secret") == {}
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            for key in obj.get("data", {}):
                assert not SECRET_LIKE.search(key), f"{obj['metadata']['name']}: {key}"
        if obj["kind"] in {"Deployment", "StatefulSet", "Job"}:
            for container in containers(obj):
                for env in container.get("env", []):
                    if SECRET_LIKE.search(env["name"]):
                        assert "secretKeyRef" in env.get("valueFrom", {}), env["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_denies_by_default(overlay: str) -> None:
    objects = render_overlay(overlay)
    deny = by_kind(objects, "NetworkPolicy")["default-deny-all"]["spec"]
    assert deny["podSelector"] == {}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    namespace = by_kind(objects, "Namespace")["medmesh"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_its_objects(overlay: str, service: str) -> None:
    objects = render_overlay(overlay)
    port = SERVICE_PORTS[service]

    deployment = by_kind(objects, "Deployment")[service]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    assert container["command"] == ["medmesh", "serve", service, "--port", str(port)]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    env_sources = {ref["configMapRef"]["name"] for ref in container["envFrom"]}
    assert env_sources == {"medmesh-shared-config", f"{service}-config"}

    svc = by_kind(objects, "Service")[service]
    assert selects({"matchLabels": svc["spec"]["selector"]}, pod_labels)
    assert [p["port"] for p in svc["spec"]["ports"]] == [port]

    account = by_kind(objects, "ServiceAccount")[service]
    assert account["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == service

    config = by_kind(objects, "ConfigMap")[f"{service}-config"]["data"]
    prefix = f"MEDMESH_{service.upper()}_"
    assert all(key.startswith(prefix) for key in config)
    assert config[f"{prefix}HOST"] == "0.0.0.0"

    hpa = by_kind(objects, "HorizontalPodAutoscaler")[service]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]

    pdb = by_kind(objects, "PodDisruptionBudget")[service]["spec"]
    assert selects(pdb["selector"], pod_labels)

    policies = by_kind(objects, "NetworkPolicy")
    ingress = policies[f"{service}-ingress"]["spec"]
    assert selects(ingress["podSelector"], pod_labels)
    ports = {p["port"] for rule in ingress["ingress"] for p in rule["ports"]}
    assert ports == {port}
    peers = [peer for rule in ingress["ingress"] for peer in rule["from"]]
    monitoring = {"kubernetes.io/metadata.name": "monitoring"}
    assert any(p.get("namespaceSelector", {}).get("matchLabels") == monitoring for p in peers)
    egress = policies[f"{service}-egress"]["spec"]
    assert selects(egress["podSelector"], pod_labels)

    job = by_kind(objects, "Job")[f"{service}-migrate"]
    (migrate,) = pod_spec(job)["containers"]
    assert migrate["command"] == ["medmesh", "migrate", service]
    assert migrate["image"] == container["image"]
    assert selects(egress["podSelector"], job["spec"]["template"]["metadata"]["labels"])


def test_prod_runs_more_replicas_than_dev() -> None:
    dev, prod = render_overlay("dev"), render_overlay("prod")
    for service in SERVICES:
        dev_hpa = by_kind(dev, "HorizontalPodAutoscaler")[service]["spec"]
        prod_hpa = by_kind(prod, "HorizontalPodAutoscaler")[service]["spec"]
        assert prod_hpa["minReplicas"] >= 3 > dev_hpa["minReplicas"]
        assert by_kind(prod, "Deployment")[service]["spec"]["replicas"] >= 3


def test_dev_brings_its_data_services_and_prod_does_not() -> None:
    data_services = {"postgres", "redis", "mosquitto"}
    assert data_services <= set(by_kind(render_overlay("dev"), "Service"))
    assert not data_services & set(by_kind(render_overlay("prod"), "Service"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(overlay: str) -> None:
    for obj in render_overlay(overlay):
        if obj["kind"] in {"Deployment", "StatefulSet", "Job"}:
            for container in containers(obj):
                name, _, tag = container["image"].rpartition(":")
                assert name, container["image"]
                assert tag not in {"", "latest"}, container["image"]


def existing_services() -> list[str]:
    """The services `medmesh up` starts (a package not yet registered there is not shipped)."""
    from medmesh.cli.services import SERVICES as REGISTERED

    return sorted(s for s in SERVICE_PORTS if s in REGISTERED)


@pytest.mark.parametrize("service", existing_services())
def test_every_existing_service_is_deployable_and_observed(service: str) -> None:
    assert service in SERVICES, f"add deploy/k8s/base/{service}/ (copy auth/)"
    assert (OBSERVABILITY / "grafana" / "dashboards" / f"{service}.json").is_file()
    prometheus = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    assert service in {job["job_name"] for job in prometheus["scrape_configs"]}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {service, f"{service}-migrate"} <= set(compose["services"])
