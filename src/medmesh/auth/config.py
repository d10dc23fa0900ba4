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

    access_token_ttl_seconds: int = Field(
        default=900,
        ge=60,
        le=86_400,
        description="lifetime of an access token (a client may override it)",
    )
    refresh_token_ttl_seconds: int = Field(
        default=30 * 86_400,
        ge=300,
        description="lifetime of a refresh token, renewed at each rotation",
    )
    id_token_ttl_seconds: int = Field(default=900, ge=60, description="lifetime of an ID token")
    key_encryption_keys: str = Field(
        default="",
        description="kid:base64url AES-256 keys that encrypt signing keys at rest (first is active); "
        "empty in development creates var/auth-kek.key",
    )
    key_rotation_days: int = Field(
        default=90,
        ge=1,
        description="age of the active signing key at which the alert "
        "MedmeshAuthSigningKeyRotationOverdue fires (exported as "
        "medmesh_auth_signing_key_rotation_after_seconds)",
    )
    signing_alg: Literal["RS256", "RS384", "ES256", "ES384"] = Field(
        default="RS256",
        description="algorithm of new signing keys: RS256 or RS384 (RSA 2048), ES256 (ECDSA P-256, "
        "much cheaper to sign: docs/decisions/0020-rs256-default-es256-option.md) or ES384 (ECDSA "
        "P-384); a change rotates the key ring at the next start",
    )
    argon2_memory_kib: int = Field(default=19_456, description="argon2id memory cost (KiB)")
    argon2_time_cost: int = Field(default=2, description="argon2id iterations")
    argon2_parallelism: int = Field(default=1, description="argon2id lanes")
    max_concurrent_hashes: int = Field(default=4, ge=1, description="bound on argon2 work at once")
    login_delay_after_failures: int = Field(
        default=3, description="failed sign-ins of an account before it waits 1, 2, 4 ... s"
    )
    login_lockout_after_failures: int = Field(
        default=10, description="failed sign-ins of an account before it is locked"
    )
    login_lockout_seconds: int = Field(
        default=900, description="how long an account or source IP stays locked"
    )
    login_max_delay_seconds: int = Field(
        default=60, description="longest wait between two sign-in attempts of an account"
    )
    ip_lockout_after_failures: int = Field(
        default=50, description="failed sign-ins from one source IP before it is locked"
    )
    token_rate_limit_per_minute: int = Field(
        default=1200, description="token requests per source IP"
    )
    client_cache_seconds: float = Field(
        default=5.0, description="how long a client record is cached"
    )
    client_jwks_cache_seconds: float = Field(
        default=300.0,
        ge=0,
        description="how long the JWK Set read from a client's jwks_uri is cached (an unknown "
        "kid reads it again, at most every 30 s)",
    )
    registration_scopes: str = Field(
        default="openid fhirUser profile launch launch/patient offline_access online_access "
        "patient/*.rs user/*.rs",
        description="the scopes a client registered through POST /oauth/register may ask for "
        "(RFC 7591; system scopes only when listed here)",
    )
    revocation_sync_seconds: float = Field(
        default=1.0, description="how often a replica reads the revocations other replicas made"
    )
    cleanup_interval_seconds: float = Field(
        default=600.0,
        description="how often expired refresh tokens, revocations and stale login counters "
        "are deleted",
    )
    authorization_code_ttl_seconds: int = Field(
        default=60, ge=10, le=600, description="lifetime of an authorization code"
    )
    launch_ttl_seconds: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="lifetime of a launch value an EHR mints (POST /ehr/launches)",
    )
    browser_session_ttl_seconds: int = Field(
        default=8 * 3600, ge=300, description="how long a sign-in at the login page lasts"
    )
    fhir_base_urls: list[str] = Field(
        default=["http://127.0.0.1:8002/fhir"],
        min_length=1,
        description="FHIR bases this deployment serves (JSON list): the `aud` of an app's "
        "authorization request must name one of them",
    )
    bootstrap_admin_username: str = Field(
        default="admin", description="the first admin user `medmesh admin bootstrap` creates"
    )
    bootstrap_admin_password: str = Field(
        default="", description="its password; empty generates one and prints it once"
    )
