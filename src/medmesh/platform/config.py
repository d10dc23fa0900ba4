"""Service settings, read from the environment only.

Each service subclasses :class:`ServiceSettings` and sets ``service_name`` and its
``env_prefix`` (``MEDMESH_AUTH_``). Every field is read from
``MEDMESH_<SVC>_<NAME>`` first and from the shared ``MEDMESH_<NAME>`` second, so a
deployment sets ``MEDMESH_REDIS_URL`` once for all services and can still override
it per service.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

SERVICE_PORTS: dict[str, int] = {
    "auth": 8001,
    "phi": 8002,
    "synthetic": 8003,
    "payments": 8004,
    "devices": 8005,
}


#: The origins ``medmesh up`` serves the services from: each one's own ``/docs`` page.
LOCAL_ORIGINS: list[str] = [f"http://127.0.0.1:{port}" for port in SERVICE_PORTS.values()]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_origin(origin: str) -> str:
    """``origin`` as a browser sends it in ``Origin``: ``scheme://host[:port]``, lower case, the
    scheme's default port left out. ``ValueError`` for ``*``, ``null``, a path, a query,
    credentials or a scheme other than http and https."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{origin!r} is not an http or https origin (scheme://host[:port])")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{origin!r} is not an origin: it has more than scheme, host and port")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port in (None, _DEFAULT_PORTS[scheme]):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


#: Connections a worker keeps open to a server database unless ``DATABASE_POOL_SIZE`` says.
DATABASE_POOL_SIZE = 20


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses add their own fields."""

    model_config = SettingsConfigDict(extra="ignore", frozen=False)
    service_name: ClassVar[str] = "service"

    host: str = Field(default="127.0.0.1", description="address the server listens on")
    port: int = Field(
        default=0, description="port the server listens on; 0 means the service's own (8001-8005)"
    )
    environment: str = Field(
        default="development",
        description="development | production; production refuses to start without the keys "
        "development generates (audit, encryption) and with the revocation check off",
    )
    var_dir: Path = Field(
        default=Path("var"),
        description="folder of SQLite files, development keys and audit checkpoints",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means SQLite at <var_dir>/<service>.db",
    )
    database_pool_size: int = Field(
        default=DATABASE_POOL_SIZE,
        ge=1,
        description="connections a worker keeps open to a server database (PostgreSQL); as many "
        "again open under a burst and close when it passes",
    )
    log_level: str = Field(default="info", description="debug | info | warning | error")
    log_file: Path | None = Field(
        default=None, description="append JSON log lines to this file; empty writes to stderr"
    )
    otlp_endpoint: str = Field(default="", description="OTLP/HTTP endpoint; empty exports nothing")
    trace_sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of traces recorded when exporting"
    )
    redis_url: str = Field(
        default="", description="Redis for rate limits; empty keeps them in memory"
    )
    issuer: str = Field(default="http://127.0.0.1:8001", description="the auth-service issuer URL")
    cors_origins: list[str] = Field(
        default=LOCAL_ORIGINS,
        description="origins (JSON list of scheme://host[:port]) whose pages may call auth's "
        "token endpoint from a browser: the /docs pages of this deployment's services; never "
        "`*`, never with credentials; default: the URLs `medmesh up` serves",
    )
    jwks_url: str = Field(
        default="", description="JWKS URL; empty means <issuer>/.well-known/jwks.json"
    )
    jwt_hs256_secret: str = Field(
        default="",
        description="HS256 tokens with this shared secret instead of the key ring (auth signs, "
        "the others verify); for tests and benchmarks",
    )
    jwks_refresh_min_seconds: float = Field(
        default=10.0, description="least time between two JWKS fetches for an unknown key id"
    )
    jwks_cache_seconds: float = Field(
        default=300.0, description="how long a fetched JWKS is used before it is fetched again"
    )
    revocation_url: str = Field(
        default="",
        description="auth-service's revocation list; empty means the JWKS URL with "
        "/.well-known/jwks.json replaced by /oauth/revocations",
    )
    revocation_poll_seconds: float = Field(
        default=1.0,
        ge=0.0,
        description="how often the revocation list is pulled; 0 checks no revocations (refused "
        "in production)",
    )
    revocation_max_staleness_seconds: float = Field(
        default=60.0,
        gt=0.0,
        description="bearer tokens are refused (503) once the revocation list is this old",
    )
    max_body_bytes: int = Field(
        default=1_048_576, description="larger request bodies are refused with 413"
    )
    drain_seconds: float = Field(
        default=5.0,
        description="after SIGTERM, seconds /readyz answers 503 (requests still served) before "
        "the server stops accepting connections",
    )
    header_read_timeout: float = Field(
        default=10.0,
        gt=0,
        description="seconds a connection has to send a request's line and headers (from its "
        "first byte, or from connecting); then 408 and the connection is closed",
    )
    body_read_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds a request has to send its whole body; then 408 in the API's error "
        "format and the connection is closed",
    )
    max_header_bytes: int = Field(
        default=65_536,
        ge=1024,
        description="largest request line and headers accepted; larger ones get 431 and the "
        "connection is closed",
    )
    audit_flush_ms: float = Field(
        default=0.0,
        description="extra group-commit window; 0 batches whatever queued while the last commit ran",
    )
    audit_keys: str = Field(
        default="",
        description="HMAC keys of the audit chain, kid:base64url,... (first links new records, "
        "the others only verify); empty: development generates <var_dir>/<service>-audit.key, "
        "production refuses to start",
    )
    audit_checkpoint_file: str = Field(
        default="",
        description="where signed checkpoints of the audit chain are appended (outside the "
        "database); empty means <var_dir>/<service>-audit-checkpoints.jsonl",
    )
    audit_checkpoint_records: int = Field(
        default=1000, ge=1, description="a checkpoint after at most this many new audit records"
    )
    audit_checkpoint_seconds: float = Field(
        default=60.0,
        gt=0,
        description="a checkpoint at most this long after an audit record it does not cover",
    )

    @field_validator("cors_origins")
    @classmethod
    def _canonical_origins(cls, origins: list[str]) -> list[str]:
        return [canonical_origin(origin) for origin in origins]

    @property
    def audience(self) -> str:
        """The ``aud`` value tokens must carry to call this service."""
        return f"medmesh-{self.service_name}"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+medmesh:///{self.var_dir / (self.service_name + '.db')}"

    @property
    def effective_jwks_url(self) -> str:
        return self.jwks_url or self.issuer.rstrip("/") + "/.well-known/jwks.json"

    @property
    def effective_port(self) -> int:
        return self.port or SERVICE_PORTS.get(self.service_name, 8000)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix="MEDMESH_", case_sensitive=False)
        return (init_settings, env_settings, shared, file_secret_settings)
