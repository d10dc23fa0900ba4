"""auth-service domain metrics (registered on the app's registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from medmesh.platform.metrics import ServiceMetrics


@dataclass(frozen=True)
class AuthMetrics:
    tokens_issued: Counter
    login_failures: Counter
    rejected: Counter
    key_age: Gauge
    key_rotation_after: Gauge

    @classmethod
    def register(cls, metrics: ServiceMetrics) -> AuthMetrics:
        issued = metrics.counter(
            "medmesh_auth_tokens_issued_total", "Access tokens issued.", ("grant_type",)
        )
        failures = metrics.counter(
            "medmesh_auth_login_failures_total", "Failed sign-ins.", ("reason",)
        )
        rejected = metrics.counter(
            "medmesh_auth_token_requests_rejected_total",
            "OAuth requests refused, by RFC 6749 error.",
            ("error",),
        )
        key_age = metrics.gauge(
            "medmesh_auth_signing_key_age_seconds", "Age of the active signing key."
        )
        key_rotation_after = metrics.gauge(
            "medmesh_auth_signing_key_rotation_after_seconds",
            "Age at which the active signing key is due for rotation (MEDMESH_AUTH_KEY_ROTATION_DAYS).",
        )
        for grant in ("client_credentials", "password", "refresh_token"):
            issued.labels(grant)
        for reason in ("bad_credentials", "throttled"):
            failures.labels(reason)
        return cls(issued, failures, rejected, key_age, key_rotation_after)
