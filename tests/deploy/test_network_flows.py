"""The NetworkPolicies allow exactly the calls the services make (ARCHITECTURE §6).

Each call needs two rules: the caller's egress to the callee's API pods on its port, and the
callee's ingress from the caller's pods. A service that makes no call to another is not let in.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from medmesh.platform.config import SERVICE_PORTS
from tests.deploy.tools import OVERLAYS, SERVICES, by_kind, render_overlay

#: Who calls whom inside the cluster. Every service calls auth (JWKS, revocations, tokens);
#: auth calls phi to check the patient picked at sign-in.
CALLS: dict[str, set[str]] = {
    "auth": {"phi"},
    "phi": {"auth"},
    "synthetic": {"auth", "phi"},
    "payments": {"auth", "phi"},
    "devices": {"auth", "phi"},
}
#: Services that call HTTPS endpoints outside the cluster (payments: webhook receivers).
CALLS_OUT_ON_443 = {"payments"}
#: Addresses no call to the outside may reach: the cluster's and the VPC's private ranges, cloud
#: metadata (link-local) and loopback.
INSIDE = [
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def api_pod_labels(objects: list[dict[str, Any]], service: str) -> dict[str, str]:
    labels: dict[str, str] = by_kind(objects, "Deployment")[service]["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def allows(rules: list[dict[str, Any]], peers_key: str, labels: dict[str, str], port: int) -> bool:
    """Whether a rule lets pods with ``labels`` of this namespace through on ``port``."""
    for rule in rules:
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        for peer in rule.get(peers_key, []):
            in_namespace = "podSelector" in peer and "namespaceSelector" not in peer
            if in_namespace and selects(peer["podSelector"], labels):
                return True
    return False


def pairs() -> list[tuple[str, str]]:
    return [(a, b) for a in SERVICES for b in SERVICES if a != b]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("caller", "callee"), pairs())
def test_a_call_is_allowed_both_ways_exactly_when_it_is_made(
    overlay: str, caller: str, callee: str
) -> None:
    objects = render_overlay(overlay)
    policies = by_kind(objects, "NetworkPolicy")
    port = SERVICE_PORTS[callee]
    out = allows(
        policies[f"{caller}-egress"]["spec"]["egress"],
        "to",
        api_pod_labels(objects, callee),
        port,
    )
    admitted = allows(
        policies[f"{callee}-ingress"]["spec"]["ingress"],
        "from",
        api_pod_labels(objects, caller),
        port,
    )
    called = callee in CALLS[caller]
    assert out is called, f"{caller}-egress to {callee}"
    if callee == "auth":
        # auth admits every medmesh API pod: each verifies tokens with its JWKS.
        assert admitted
    else:
        assert admitted is called, f"{callee}-ingress from {caller}"


def outside_rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        rule
        for rule in policy["spec"]["egress"]
        if any("ipBlock" in peer for peer in rule.get("to", []))
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_only_webhook_senders_reach_outside_and_only_public_https(service: str) -> None:
    policy = by_kind(render_overlay("dev"), "NetworkPolicy")[f"{service}-egress"]
    rules = outside_rules(policy)
    if service not in CALLS_OUT_ON_443:
        assert rules == []
        return
    (rule,) = rules
    assert [p["port"] for p in rule["ports"]] == [443]
    blocks = [peer["ipBlock"] for peer in rule["to"]]
    assert {b["cidr"] for b in blocks} == {"0.0.0.0/0", "::/0"}
    for inside in INSIDE:
        excluded = [
            ipaddress.ip_network(e)
            for b in blocks
            for e in b.get("except", [])
            if ipaddress.ip_network(e).version == inside.version
        ]
        assert any(inside.subnet_of(e) for e in excluded), inside  # type: ignore[arg-type]


def broker_labels(objects: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = by_kind(objects, "Deployment")["mosquitto"]["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


@pytest.mark.parametrize("service", SERVICES)
def test_only_devices_reaches_the_dev_broker_and_the_broker_admits_only_devices(
    service: str,
) -> None:
    objects = render_overlay("dev")
    policies = by_kind(objects, "NetworkPolicy")
    broker = broker_labels(objects)
    out = allows(policies[f"{service}-egress"]["spec"]["egress"], "to", broker, 1883)
    admitted = allows(
        policies["mosquitto"]["spec"]["ingress"], "from", api_pod_labels(objects, service), 1883
    )
    assert out is (service == "devices")
    assert admitted is (service == "devices")


def test_in_prod_devices_alone_reaches_the_managed_broker_over_tls() -> None:
    objects = render_overlay("prod")
    assert "mosquitto" not in by_kind(objects, "Deployment")
    policy = by_kind(objects, "NetworkPolicy")["allow-managed-mqtt"]["spec"]
    selected = [s for s in SERVICES if selects(policy["podSelector"], api_pod_labels(objects, s))]
    assert selected == ["devices"]
    (rule,) = policy["egress"]
    assert [p["port"] for p in rule["ports"]] == [8883]
    assert [list(peer) for peer in rule["to"]] == [["ipBlock"]]


def test_auth_checks_picked_patients_at_phi_in_cluster_and_through_the_public_base_in_prod() -> (
    None
):
    dev, prod = render_overlay("dev"), render_overlay("prod")
    bases = {
        name: by_kind(objects, "ConfigMap")["auth-config"]["data"]["MEDMESH_AUTH_FHIR_BASE_URLS"]
        for name, objects in (("dev", dev), ("prod", prod))
    }
    assert bases == {
        "dev": '["http://phi.medmesh.svc.cluster.local:8002/fhir"]',
        "prod": '["https://fhir.medmesh.example.com/fhir"]',
    }
    # The public base is served by the ingress controller: prod lets auth reach it on 443.
    policy = by_kind(prod, "NetworkPolicy")["auth-egress-public-fhir"]["spec"]
    assert selects(policy["podSelector"], api_pod_labels(prod, "auth"))
    (rule,) = policy["egress"]
    assert [p["port"] for p in rule["ports"]] == [443]
    assert [peer["namespaceSelector"]["matchLabels"] for peer in rule["to"]] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"}
    ]
    hosts = {r["host"] for r in by_kind(prod, "Ingress")["phi"]["spec"]["rules"]}
    assert hosts == {"fhir.medmesh.example.com"}
