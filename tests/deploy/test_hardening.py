"""Every container of every rendered workload is locked down (restricted Pod Security)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.tools import (
    OVERLAYS,
    SERVICES,
    by_kind,
    containers,
    pod_spec,
    render_overlay,
    workloads,
)

# Request timeout of the medmesh server; with the drain it bounds a shutdown.
REQUEST_TIMEOUT_SECONDS = 30


def container_problems(obj: dict[str, Any]) -> list[str]:
    """What is missing from one workload's pod and containers."""
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    spec = pod_spec(obj)
    pod_sc = spec.get("securityContext", {})
    problems = []
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken is not false")
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(f"{where}: {host}")
    for c in containers(obj):
        at = f"{where}/{c['name']}"
        sc = c.get("securityContext", {})
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            problems.append(f"{at}: runAsNonRoot")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: readOnlyRootFilesystem")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation")
        if sc.get("privileged"):
            problems.append(f"{at}: privileged")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or caps.get("add"):
            problems.append(f"{at}: capabilities must drop ALL and add none")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        if seccomp.get("type") != "RuntimeDefault":
            problems.append(f"{at}: seccompProfile RuntimeDefault")
        resources = c.get("resources", {})
        for key in ("cpu", "memory"):
            if key not in resources.get("requests", {}):
                problems.append(f"{at}: requests.{key}")
        if "memory" not in resources.get("limits", {}):
            problems.append(f"{at}: limits.memory")
        if obj["kind"] != "Job" and c in spec["containers"]:
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe not in c:
                    problems.append(f"{at}: {probe}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_hardened(overlay: str) -> None:
    found = workloads(overlay)
    assert {"Deployment", "Job"} <= {o["kind"] for o in found}
    problems = [p for obj in found for p in container_problems(obj)]
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_service_pods_drain_spread_and_write_only_to_volumes(overlay: str, service: str) -> None:
    deployment = by_kind(render_overlay(overlay), "Deployment")[service]
    spec = pod_spec(deployment)
    (container,) = spec["containers"]

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"

    # The pod must outlive the drain (not-ready) plus the slowest request.
    config = by_kind(render_overlay(overlay), "ConfigMap")[f"{service}-config"]["data"]
    drain = float(config.get(f"MEDMESH_{service.upper()}_DRAIN_SECONDS", "5"))
    assert spec["terminationGracePeriodSeconds"] > drain + REQUEST_TIMEOUT_SECONDS

    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}

    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert set(mounts) == {"/tmp", config[f"MEDMESH_{service.upper()}_VAR_DIR"]}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
