"""The metrics that rules and dashboards use are the ones a running service exposes.

Each service runs as a real process (``medmesh serve <svc> --migrate``); after some traffic its
/metrics must carry every medmesh_* name used for it, and every generic one.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.deploy.live_service import missing_metrics, running_service, tokens, used_by


def test_auth_exposes_every_metric_its_rules_and_dashboards_use(tmp_path: Path) -> None:
    with running_service("auth", tmp_path) as url:
        # Traffic first, so that labelled series exist as well as their declarations.
        for path in ("/healthz", "/readyz", "/.well-known/jwks.json"):
            httpx.get(url + path, timeout=5)
        response = httpx.get(url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert "medmesh_auth_tokens_issued_total" in used_by("auth")
    assert missing_metrics("auth", response.text) == []


def test_phi_exposes_every_metric_its_dashboard_and_rules_use(tmp_path: Path) -> None:
    headers = {
        **tokens().headers("system/*.cruds", audience="medmesh-phi"),
        "Content-Type": "application/fhir+json",
    }
    with (
        running_service("phi", tmp_path) as url,
        httpx.Client(base_url=url + "/fhir", headers=headers, timeout=10) as fhir,
    ):
        created = fhir.post("/Patient", json={"resourceType": "Patient", "gender": "other"})
        assert created.status_code == 201, created.text
        assert fhir.get(f"/Patient/{created.json()['id']}").status_code == 200
        assert fhir.get("/Patient", params={"gender": "other"}).status_code == 200
        assert fhir.get("/Nope/1").status_code == 404
        response = httpx.get(url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert "medmesh_audit_records_total" in used_by("phi")
    assert missing_metrics("phi", response.text) == []
    assert 'route="/fhir/{resource_type}/{resource_id}"' in response.text
    assert 'medmesh_audit_records_total{service="phi"}' in response.text


def test_synthetic_exposes_every_metric_its_dashboard_and_rules_use(tmp_path: Path) -> None:
    headers = tokens().headers("synthetic:generate", audience="medmesh-synthetic")
    with (
        running_service("synthetic", tmp_path) as url,
        httpx.Client(base_url=url, headers=headers, timeout=60) as http,
    ):
        assert http.post("/v1/generate", json={"size": 2, "seed": 1}).status_code == 200
        created = http.post("/v1/jobs", json={"size": 3, "seed": 1})
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 120
        while (job := http.get(created.headers["location"]).json())["status"] != "succeeded":
            assert job["status"] in {"queued", "running"}, job
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        response = http.get("/metrics")
    assert response.status_code == 200
    assert "medmesh_synthetic_jobs_finished_total" in used_by("synthetic")
    assert missing_metrics("synthetic", response.text) == []
    assert 'medmesh_synthetic_jobs_finished_total{status="succeeded"} 1.0' in response.text
    assert 'medmesh_synthetic_patients_generated_total{mode="sync"} 2.0' in response.text
    assert 'route="/v1/jobs/{job_id}"' in response.text


def test_payments_exposes_every_metric_its_dashboard_and_rules_use(tmp_path: Path) -> None:
    headers = tokens().headers("payments:write", audience="medmesh-payments")
    with (
        running_service("payments", tmp_path) as url,
        httpx.Client(base_url=url, headers=headers, timeout=30) as http,
    ):
        paid = {"amount": "2500", "currency": "usd", "confirm": "true"}
        visa = http.post("/v1/payment_intents", data={**paid, "payment_method": "pm_card_visa"})
        assert visa.status_code == 200, visa.text
        declined = http.post(
            "/v1/payment_intents",
            data={**paid, "payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
        )
        assert declined.status_code == 402, declined.text
        assert http.get(f"/v1/payment_intents/{visa.json()['id']}").status_code == 200
        response = http.get("/metrics")
    assert response.status_code == 200
    assert "medmesh_payments_card_errors_total" in used_by("payments")
    assert missing_metrics("payments", response.text) == []
    create = 'action="payments.payment_intent.create"'
    assert f'medmesh_payments_writes_total{{{create},outcome="succeeded"}} 1.0' in response.text
    assert f'medmesh_payments_writes_total{{{create},outcome="card_error"}} 1.0' in response.text
    assert 'medmesh_payments_card_errors_total{code="card_declined"} 1.0' in response.text
    assert 'route="/v1/payment_intents/{intent_id}"' in response.text


def test_devices_exposes_every_metric_its_dashboard_and_rules_use(tmp_path: Path) -> None:
    headers = tokens().headers("devices:write devices:ingest", audience="medmesh-devices")
    with (
        running_service("devices", tmp_path) as url,
        httpx.Client(base_url=url, headers=headers, timeout=30) as http,
    ):
        device = http.post(
            "/v1/devices", json={"manufacturer": "Acme", "model": "Pulse 2", "serial_number": "1"}
        )
        assert device.status_code == 201, device.text
        reading = {"timestamp": "2026-01-01T08:00:00Z", "metric": "heart_rate", "unit": "/min"}
        batch = [
            {**reading, "device_id": device.json()["id"], "reading_id": "r-1", "value": 72},
            {**reading, "device_id": device.json()["id"], "reading_id": "r-2", "value": 900},
        ]
        sent = http.post("/v1/readings", json={"readings": batch})
        assert sent.status_code == 200, sent.text
        assert [r["status"] for r in sent.json()["results"]] == ["stored", "rejected"]
        response = http.get("/metrics")
    assert response.status_code == 200
    assert "medmesh_devices_delivery_lag_seconds" in used_by("devices")
    assert missing_metrics("devices", response.text) == []
    stored = 'medmesh_devices_readings_total{outcome="stored",transport="http"} 1.0'
    rejected = 'medmesh_devices_readings_total{outcome="rejected",transport="http"} 1.0'
    assert stored in response.text
    assert rejected in response.text
    assert "medmesh_devices_mqtt_connected 0.0" in response.text
    assert 'route="/v1/readings"' in response.text
