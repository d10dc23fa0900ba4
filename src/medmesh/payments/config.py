"""payment-gateway settings (``MEDMESH_PAYMENTS_<NAME>``, shared ``MEDMESH_<NAME>``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from medmesh.platform.config import ServiceSettings


class PaymentsSettings(ServiceSettings):
    """Settings of the payment gateway."""

    model_config = SettingsConfigDict(env_prefix="MEDMESH_PAYMENTS_", extra="ignore")
    service_name: ClassVar[str] = "payments"

    connector: Literal["simulator"] = Field(
        default="simulator",
        description="the processor payments go to; `simulator` behaves like Stripe's test mode",
    )
    fingerprint_key: str = Field(
        default="",
        description="HMAC key (base64url, at least 32 bytes) of card fingerprints; empty: "
        "development generates <var_dir>/payments-fingerprint.key, production refuses to start",
    )
    idempotency_hours: float = Field(
        default=24.0, gt=0, description="how long a stored response is replayed for its key"
    )
    idempotency_purge_seconds: float = Field(
        default=3600.0, gt=0, description="how often keys past their replay window are deleted"
    )
    webhook_max_attempts: int = Field(
        default=25,
        ge=1,
        description="deliveries of one event to one endpoint before it is parked (with the "
        "default backoff, 25 attempts span about three days)",
    )
    webhook_backoff_seconds: float = Field(
        default=10.0, gt=0, description="first retry delay of a webhook (doubles each time)"
    )
    webhook_max_backoff_seconds: float = Field(
        default=6 * 3600.0, gt=0, description="longest delay between two webhook attempts"
    )
    webhook_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often the webhook worker looks for due events"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="per webhook request")
    public_url: str = Field(
        default="",
        description="the gateway's base URL as clients reach it (next_action URLs); empty "
        "means http://127.0.0.1:<port>",
    )

    phi_url: str = Field(
        default="",
        description="phi-service base URL: succeeded payments and refunds of customers tied to a "
        "FHIR Patient are recorded there; empty records nothing",
    )
    auth_url: str = Field(
        default="",
        description="auth-service base URL the gateway gets its phi token from (its "
        "/oauth/token); empty means the issuer",
    )
    phi_client_id: str = Field(
        default="svc-payments", description="OAuth client that records payments in phi"
    )
    phi_client_secret: str = Field(
        default="", description="that client's secret (a Secret in Kubernetes)"
    )
    phi_scope: str = Field(
        default="system/PaymentReconciliation.cr",
        description="scopes the phi token asks for (read and create PaymentReconciliation)",
    )

    @model_validator(mode="after")
    def _phi_needs_credentials(self) -> PaymentsSettings:
        if self.phi_url and not self.phi_client_secret:
            raise ValueError("phi_url needs phi_client_secret (the gateway's own phi token)")
        return self

    @property
    def records_payments_in_phi(self) -> bool:
        return bool(self.phi_url)

    @property
    def effective_token_url(self) -> str:
        return (self.auth_url or self.issuer).rstrip("/") + "/oauth/token"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.effective_port}").rstrip("/")
