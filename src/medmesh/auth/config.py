"""auth-service settings (``MEDMESH_AUTH_<NAME>``, shared ``MEDMESH_<NAME>``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medmesh.platform.config import ServiceSettings

ALL_AUDIENCES = (
    "medmesh-auth",
    "medmesh-phi",
    "medmesh-synthetic",
    "medmesh-payments",
    "medmesh-devices",
)


class AuthSettings(ServiceSettings):
    """Settings of the token server."""

    model_config = SettingsConfigDict(env_prefix="MEDMESH_AUTH_", extra="ignore")
    service_name: ClassVar[str] = "auth"

    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=300)
    id_token_ttl_seconds: int = Field(default=900, ge=60)
    key_encryption_keys: str = Field(
        default="",
        description="kid:base64url AES-256 keys that encrypt signing keys at rest (first is active); "
        "empty in development creates var/auth-kek.key",
    )
    key_rotation_days: int = Field(default=90, ge=1)
    signing_alg: Literal["RS256", "ES256"] = Field(
        default="RS256",
        description="algorithm of new signing keys: RS256 (RSA 2048) or ES256 (ECDSA P-256, about "
        "ten times cheaper to sign); a change rotates the key ring at the next start",
    )
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    max_concurrent_hashes: int = Field(default=4, ge=1, description="bound on argon2 work at once")
    login_delay_after_failures: int = 3
    login_lockout_after_failures: int = 10
    login_lockout_seconds: int = 900
    login_max_delay_seconds: int = 60
    ip_lockout_after_failures: int = 50
    token_rate_limit_per_minute: int = Field(
        default=1200, description="token requests per source IP"
    )
    client_cache_seconds: float = Field(
        default=5.0, description="how long a client record is cached"
    )
    revocation_sync_seconds: float = 1.0
    cleanup_interval_seconds: float = 600.0
    bootstrap_admin_username: str = "admin"
    bootstrap_admin_password: str = ""
