"""phi-service settings (``MEDMESH_PHI_<NAME>``, shared ``MEDMESH_<NAME>``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import is_sqlite


class PhiSettings(ServiceSettings):
    """Settings of the FHIR store."""

    model_config = SettingsConfigDict(env_prefix="MEDMESH_PHI_", extra="ignore")
    service_name: ClassVar[str] = "phi"

    max_body_bytes: int = 16 * 1_048_576
    encryption_keys: str = Field(
        default="",
        description="kid:base64url AES-256 keys that encrypt stored resources (first is active); "
        "empty in development creates var/phi-keys.key",
    )
    blind_index_key: str = Field(
        default="",
        description="base64url HMAC key of the blind indexes; empty in development uses var/phi-keys.key",
    )
    default_count: int = 50
    max_count: int = 1000
    max_include: int = Field(
        default=1000, description="cap on _include/_revinclude results per page"
    )
    max_bundle_entries: int = 5000
    max_json_depth: int = 64
    concurrent_writes: int = Field(
        default=0,
        ge=0,
        description="writes (create, update, delete, Bundles) in progress at once; the rest wait "
        "their turn (after their body is read and parsed). 0: 4 on SQLite (one writer at a time: the one holding the "
        "write lock is not delayed behind the CPU work of many others), 16 on a server database "
        "(concurrent writers; more in flight share audit commits)",
    )
    writes_per_client: int = Field(
        default=0,
        ge=0,
        description="writes of one OAuth client in progress at once; its further writes wait for "
        "one of its own (their bodies already read, holding no slot). 0: three quarters of "
        "concurrent_writes (at least 1), so one client cannot take every slot",
    )
    base_url: str = Field(
        default="", description="public base of /fhir (default http://<host>:<port>/fhir)"
    )

    @property
    def effective_concurrent_writes(self) -> int:
        """:attr:`concurrent_writes`, or its default for the database in use."""
        if self.concurrent_writes:
            return self.concurrent_writes
        return 4 if is_sqlite(self.effective_database_url) else 16

    @property
    def effective_writes_per_client(self) -> int:
        """:attr:`writes_per_client`, or three quarters of the write slots (at least 1)."""
        slots = self.effective_concurrent_writes
        if self.writes_per_client:
            return min(self.writes_per_client, slots)
        return max(1, slots * 3 // 4)
