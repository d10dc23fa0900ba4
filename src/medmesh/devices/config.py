"""medical-device service settings (``MEDMESH_DEVICES_<NAME>``, shared ``MEDMESH_<NAME>``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medmesh.platform.config import ServiceSettings


class DevicesSettings(ServiceSettings):
    """Settings of the medical-device service."""

    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEVICES_", extra="ignore")
    service_name: ClassVar[str] = "devices"

    max_batch_readings: int = Field(
        default=5000, ge=1, description="most readings one ingest request or MQTT message holds"
    )
    max_pending_readings: int = Field(
        default=50_000,
        ge=1,
        description="readings admitted and not yet stored; past it ingest answers 503 with "
        "Retry-After (never an unbounded buffer)",
    )
    retry_after_seconds: int = Field(
        default=1, ge=1, description="the Retry-After of a 503 when ingest is full"
    )
    future_skew_seconds: float = Field(
        default=300.0,
        ge=0,
        description="a reading's timestamp may be this far ahead of the server's clock",
    )
    template_dir: Path | None = Field(
        default=None,
        description="a folder of extra mapping templates (*.json); one with the name of a "
        "built-in template replaces it",
    )
    phi_url: str = Field(
        default="http://127.0.0.1:8002", description="phi-service base URL (Observations go there)"
    )
    auth_url: str = Field(
        default="",
        description="auth-service base URL this service gets its own tokens from (its "
        "/oauth/token); empty means the issuer",
    )
    phi_client_id: str = Field(default="svc-devices", description="OAuth client that writes phi")
    phi_client_secret: str = Field(
        default="", description="that client's secret (a Secret in Kubernetes)"
    )
    phi_scope: str = Field(
        default="system/Observation.cus system/Device.cru system/Patient.r",
        description="scopes the delivery token asks for",
    )
    delivery_enabled: bool = Field(
        default=True,
        description=(
            "run the delivery worker in this process (Bundles to phi, alert webhooks); false: "
            "it only ingests and queues, and a replica with it true delivers (PostgreSQL)"
        ),
    )
    delivery_max_entries: int = Field(
        default=500, ge=1, le=5000, description="most Observations in one Bundle posted to phi"
    )
    delivery_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often the delivery worker looks for due Bundles"
    )
    delivery_max_attempts: int = Field(
        default=50, ge=1, description="attempts at one Bundle before it is parked for an operator"
    )
    delivery_backoff_seconds: float = Field(
        default=1.0, gt=0, description="first retry delay of a Bundle (doubles each time)"
    )
    delivery_max_backoff_seconds: float = Field(
        default=300.0, gt=0, description="longest delay between two attempts at a Bundle"
    )
    delivery_timeout_seconds: float = Field(default=30.0, gt=0, description="per Bundle to phi")
    delivery_concurrency: int = Field(
        default=4, ge=1, le=64, description="Bundles in flight to phi at once"
    )
    backlog_poll_seconds: float = Field(
        default=5.0, gt=0, description="how often the delivery backlog and lag gauges are read"
    )
    mqtt_url: str = Field(
        default="",
        description="MQTT broker (mqtt://host:port, mqtts:// for TLS); empty: no MQTT ingest",
    )
    mqtt_topic: str = Field(
        default="medmesh/devices/+/readings",
        description="topic filter of device readings; its `+` is the device id",
    )
    mqtt_group: str = Field(
        default="medmesh-devices",
        description="MQTT v5 shared-subscription group: replicas in one group split the messages",
    )
    mqtt_client_id: str = Field(
        default="", description="this replica's MQTT client id; empty means a random one"
    )
    mqtt_username: str = Field(default="", description="the subscriber's broker user name")
    mqtt_password: str = Field(default="", description="the subscriber's broker password")
    mqtt_auth_secret: str = Field(
        default="",
        description="the secret a broker sends as `Authorization: Bearer <secret>` to "
        "POST /v1/mqtt/authenticate (its HTTP authentication of devices); empty: that endpoint "
        "answers 404",
    )
    mqtt_auth_ttl_seconds: int = Field(
        default=3600,
        ge=60,
        le=86400,
        description="how long a broker keeps a device's session before asking again (a revoked "
        "key is refused from then on)",
    )
    mqtt_batch_messages: int = Field(
        default=200,
        ge=1,
        description="messages stored in one transaction (acknowledged together once committed)",
    )
    mqtt_reconnect_seconds: float = Field(
        default=1.0, gt=0, description="wait before reconnecting after the broker went away"
    )

    alert_webhook_url: str = Field(
        default="", description="where alert events are POSTed, signed; empty: none are sent"
    )
    alert_webhook_secret: str = Field(
        default="",
        description="HMAC-SHA256 key of the Medmesh-Signature header of alert events",
    )
    reading_retention_days: int = Field(
        default=0,
        ge=0,
        description="readings older than this many days are removed (PostgreSQL: whole months "
        "dropped as partitions) and refused at ingest; 0 keeps every reading",
    )
    retention_check_seconds: float = Field(
        default=3600.0, gt=0, description="how often readings past the retention are removed"
    )
    reading_compaction_seconds: float = Field(
        default=300.0,
        ge=0,
        description="SQLite: how often the chunks of readings of each hour that is over are "
        "merged into one (a device sending one reading at a time leaves one chunk each); 0 never",
    )
    offline_check_seconds: float = Field(
        default=30.0, gt=0, description="how often devices are checked against offline rules"
    )
    default_alert_rules: bool = Field(
        default=True,
        description="make the default alert rules at start when missing (SpO2 < 90 % for 60 s, "
        "heart rate > 130 /min for 60 s, no reading for 5 min; every device)",
    )

    @property
    def effective_token_url(self) -> str:
        return (self.auth_url or self.issuer).rstrip("/") + "/oauth/token"
