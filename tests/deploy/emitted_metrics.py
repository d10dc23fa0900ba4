"""The medmesh_* metrics the services emit: the only names rules and dashboards may use."""

from __future__ import annotations

import re

# name -> Prometheus type
EMITTED_METRICS: dict[str, str] = {
    # every service (medmesh.platform.metrics)
    "medmesh_http_requests_total": "counter",
    "medmesh_http_request_duration_seconds": "histogram",
    "medmesh_http_requests_in_progress": "gauge",
    "medmesh_http_response_size_bytes": "summary",
    "medmesh_audit_write_failures_total": "counter",
    "medmesh_audit_records_total": "counter",
    "medmesh_audit_batch_size": "histogram",
    "medmesh_outbox_backlog": "gauge",
    # auth-service
    "medmesh_auth_tokens_issued_total": "counter",
    "medmesh_auth_login_failures_total": "counter",
    "medmesh_auth_token_requests_rejected_total": "counter",
    "medmesh_auth_signing_key_age_seconds": "gauge",
    "medmesh_auth_signing_key_rotation_after_seconds": "gauge",
    # phi-service (its dashboard also slices the generic ones by FHIR route)
    "medmesh_phi_resources_prepared_by_workers_total": "counter",
    "medmesh_phi_preparation_workers_lost_total": "counter",
    "medmesh_phi_import_resources_written_by_workers_total": "counter",
    "medmesh_phi_transaction_resources_written_by_workers_total": "counter",
    "medmesh_phi_compiled_modules": "gauge",
    # synthetic-phi-service
    "medmesh_synthetic_patients_generated_total": "counter",
    "medmesh_synthetic_patients_loaded_total": "counter",
    "medmesh_synthetic_jobs_finished_total": "counter",
    "medmesh_synthetic_jobs_running": "gauge",
    "medmesh_synthetic_jobs_queued": "gauge",
    "medmesh_synthetic_job_duration_seconds": "histogram",
    # payment-gateway
    "medmesh_payments_writes_total": "counter",
    "medmesh_payments_card_errors_total": "counter",
    "medmesh_payments_idempotency_keys_expired_total": "counter",
    # medical-device service
    "medmesh_devices_readings_total": "counter",
    "medmesh_devices_ingest_full_total": "counter",
    "medmesh_devices_ingest_pending_readings": "gauge",
    "medmesh_devices_observations_delivered_total": "counter",
    "medmesh_devices_delivery_backlog_bundles": "gauge",
    "medmesh_devices_delivery_lag_seconds": "gauge",
    "medmesh_devices_delivery_parked_bundles": "gauge",
    "medmesh_devices_mqtt_messages_total": "counter",
    "medmesh_devices_mqtt_connected": "gauge",
    "medmesh_devices_reading_chunks_merged_total": "counter",
}

SERVICE_PREFIXES = ("auth", "phi", "synthetic", "payments", "devices")
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
METRIC_NAME = re.compile(r"\bmedmesh_[a-z_]+")


def base_name(name: str) -> str:
    """The metric a series name belongs to (``..._seconds_bucket`` -> ``..._seconds``)."""
    if name in EMITTED_METRICS:
        return name
    for metric, kind in EMITTED_METRICS.items():
        if any(name == metric + suffix for suffix in _SUFFIXES.get(kind, ())):
            return metric
    return name


def owning_service(metric: str) -> str | None:
    """The service a domain metric belongs to; None for the ones every service has."""
    for service in SERVICE_PREFIXES:
        if metric.startswith(f"medmesh_{service}_"):
            return service
    return None
