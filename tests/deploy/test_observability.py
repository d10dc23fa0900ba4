"""Alert rules, dashboards, the collector and the compose stack."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.emitted_metrics import EMITTED_METRICS, METRIC_NAME, base_name
from tests.deploy.tools import DEPLOY, OBSERVABILITY, SERVICES, find_tool, run

RULE_FILES = sorted((OBSERVABILITY / "rules").glob("*.yml"))
RULE_TESTS = sorted((OBSERVABILITY / "rules" / "tests").glob("*.yml"))
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))


def rule_expressions() -> list[str]:
    exprs = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [rule["expr"] for rule in group["rules"]]
    return exprs


def dashboard_expressions(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def used_metric_names() -> set[str]:
    exprs = rule_expressions() + [e for p in DASHBOARDS for e in dashboard_expressions(p)]
    return {m for expr in exprs for m in METRIC_NAME.findall(expr)}


def test_promtool_checks_the_rules() -> None:
    assert RULE_FILES
    result = run(find_tool("promtool"), "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_fire_when_they_should() -> None:
    assert RULE_TESTS
    result = run(find_tool("promtool"), "test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_prometheus_config() -> None:
    result = run(find_tool("promtool"), "check", "config", OBSERVABILITY / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_required_alerts_exist() -> None:
    exprs = "\n".join(rule_expressions())
    for metric in (
        "medmesh_http_requests_total",
        "medmesh_http_request_duration_seconds_bucket",
        "medmesh_audit_write_failures_total",
        "medmesh_outbox_backlog",
        "medmesh_auth_signing_key_age_seconds",
        "medmesh_payments_writes_total",
        "medmesh_devices_delivery_lag_seconds",
        "medmesh_devices_delivery_parked_bundles",
        "medmesh_devices_ingest_full_total",
        "medmesh_devices_mqtt_connected",
    ):
        assert metric in exprs


def test_rules_and_dashboards_use_only_emitted_metrics() -> None:
    used = used_metric_names()
    assert used
    unknown = sorted(name for name in used if base_name(name) not in EMITTED_METRICS)
    assert unknown == []


def load_dashboard_generator(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    path = OBSERVABILITY / "grafana" / "dashboards.py"
    spec = importlib.util.spec_from_file_location("medmesh_dashboards", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # It imports its sibling modules (the model, the panels) as a script run from its folder does.
    monkeypatch.syspath_prepend(str(path.parent))
    # dataclasses resolve their annotations through sys.modules.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_what_the_generator_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = load_dashboard_generator(monkeypatch).dashboard_files()
    assert sorted(expected) == DASHBOARDS
    for path, text in expected.items():
        assert path.read_text() == text, (
            f"run python {DEPLOY / 'observability/grafana/dashboards.py'}"
        )


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_a_red_dashboard(service: str) -> None:
    path = OBSERVABILITY / "grafana" / "dashboards" / f"{service}.json"
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == f"medmesh-{service}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = "\n".join(dashboard_expressions(path))
    assert f'medmesh_http_requests_total{{service="{service}"' in exprs
    assert "5.." in exprs
    assert f'medmesh_http_request_duration_seconds_bucket{{service="{service}"' in exprs


def test_the_auth_dashboard_shows_its_domain() -> None:
    exprs = "\n".join(dashboard_expressions(OBSERVABILITY / "grafana/dashboards/auth.json"))
    for metric in (
        "medmesh_auth_tokens_issued_total",
        "medmesh_auth_login_failures_total",
        "medmesh_auth_token_requests_rejected_total",
    ):
        assert metric in exprs


def test_the_payments_dashboard_shows_its_domain() -> None:
    exprs = "\n".join(dashboard_expressions(OBSERVABILITY / "grafana/dashboards/payments.json"))
    for metric in (
        "medmesh_payments_writes_total",
        "medmesh_payments_card_errors_total",
        "medmesh_payments_idempotency_keys_expired_total",
    ):
        assert metric in exprs
    assert 'medmesh_outbox_backlog{service="payments"}' in exprs


def test_the_devices_dashboard_shows_its_domain() -> None:
    exprs = "\n".join(dashboard_expressions(OBSERVABILITY / "grafana/dashboards/devices.json"))
    for metric in (
        "medmesh_devices_readings_total",
        "medmesh_devices_ingest_full_total",
        "medmesh_devices_ingest_pending_readings",
        "medmesh_devices_observations_delivered_total",
        "medmesh_devices_delivery_backlog_bundles",
        "medmesh_devices_delivery_lag_seconds",
        "medmesh_devices_delivery_parked_bundles",
        "medmesh_devices_mqtt_messages_total",
        "medmesh_devices_mqtt_connected",
    ):
        assert metric in exprs


def test_the_collector_pipelines_use_only_defined_components() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for name in pipeline.get(section, []):
                assert name in config[section], f"{section}: {name}"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert set(config["service"]["extensions"]) <= set(config["extensions"])


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_runs_the_whole_stack() -> None:
    services = compose()["services"]
    stack = {"postgres", "redis", "mosquitto", "otel-collector", "jaeger", "prometheus", "grafana"}
    assert stack | set(SERVICES) <= set(services)
    for name, service in services.items():
        image = service["image"]
        if "build" not in service:
            assert re.search(r":[\w.-]*\d", image), f"{name}: pin {image}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_services_are_hardened_and_take_secrets_from_the_environment(service: str) -> None:
    services = compose()["services"]
    for name in (service, f"{service}-migrate"):
        entry = services[name]
        assert entry["read_only"] is True
        assert entry["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in entry["security_opt"]
        assert entry["user"].split(":")[0] not in {"0", "root"}
        assert entry["build"]["args"]["SERVICE"] == service
        for key, value in entry["environment"].items():
            if re.search(r"(PASSWORD|_KEYS?$|SECRET)", key):
                assert str(value).startswith("${"), key
    assert services[service]["depends_on"][f"{service}-migrate"] == {
        "condition": "service_completed_successfully"
    }
