"""synthetic-phi-service settings (``MEDMESH_SYNTHETIC_<NAME>``, shared ``MEDMESH_<NAME>``)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medmesh.platform.config import ServiceSettings


class SyntheticSettings(ServiceSettings):
    """Settings of the synthetic patient generator service."""

    model_config = SettingsConfigDict(env_prefix="MEDMESH_SYNTHETIC_", extra="ignore")
    service_name: ClassVar[str] = "synthetic"

    output_dir: Path | None = Field(
        default=None, description="where job output goes; empty means <var_dir>/synthetic-output"
    )
    max_sync_size: int = Field(
        default=100, ge=1, description="largest run POST /v1/generate answers synchronously"
    )
    max_realism_size: int = Field(
        default=2000, ge=1, description="largest run POST /v1/realism measures synchronously"
    )
    max_job_size: int = Field(default=1_000_000, ge=1, description="largest run a job may ask")
    job_workers: int = Field(
        default=1, ge=1, le=64, description="jobs this replica runs at the same time"
    )
    max_generation_workers: int = Field(
        default=4, ge=1, le=256, description="generator processes one job may ask for"
    )
    job_poll_seconds: float = Field(
        default=2.0, gt=0, description="how often idle job workers look for queued jobs"
    )
    progress_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often a running job's progress is saved"
    )
    job_stale_seconds: float = Field(
        default=120.0,
        gt=0,
        description="a running job whose worker has not reported for this long is failed "
        "(its replica died); it must be well above progress_interval_seconds",
    )
    instance_name: str = Field(
        default="",
        description="this replica's name on the jobs it runs; empty means <hostname>:<port>",
    )
    phi_url: str = Field(
        default="http://127.0.0.1:8002", description="phi-service base URL (jobs with target phi)"
    )
    auth_url: str = Field(
        default="",
        description="auth-service base URL this service gets its own tokens from (its "
        "/oauth/token); empty means the issuer",
    )
    phi_client_id: str = Field(default="svc-synthetic", description="OAuth client that loads phi")
    phi_client_secret: str = Field(
        default="", description="that client's secret (a Secret in Kubernetes)"
    )
    phi_scope: str = Field(default="system/*.crus", description="scopes the loading token asks for")
    load_batch_size: int = Field(
        default=10, ge=1, le=1000, description="patients per transaction Bundle posted to phi"
    )
    load_max_entries: int = Field(
        default=2000, ge=1, description="at most this many entries per posted Bundle"
    )
    load_concurrency: int = Field(
        default=4, ge=1, le=64, description="Bundles in flight to phi at once"
    )
    load_retries: int = Field(
        default=5, ge=0, le=20, description="retries of a Bundle on 429, 5xx or connection errors"
    )
    load_backoff_seconds: float = Field(
        default=0.5, ge=0, description="first retry delay (doubles each time, with jitter)"
    )
    load_timeout_seconds: float = Field(default=120.0, gt=0, description="per request to phi")

    @property
    def effective_output_dir(self) -> Path:
        return self.output_dir or self.var_dir / "synthetic-output"

    @property
    def effective_token_url(self) -> str:
        return (self.auth_url or self.issuer).rstrip("/") + "/oauth/token"

    @property
    def effective_instance_name(self) -> str:
        return self.instance_name or f"{socket.gethostname()}:{self.effective_port}"
