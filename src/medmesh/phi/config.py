"""phi-service settings (``MEDMESH_PHI_<NAME>``, shared ``MEDMESH_<NAME>``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medmesh.platform.config import ServiceSettings


class PhiSettings(ServiceSettings):
    """Settings of the FHIR store."""

    model_config = SettingsConfigDict(env_prefix="MEDMESH_PHI_", extra="ignore")
    service_name: ClassVar[str] = "phi"

    max_body_bytes: int = Field(
        default=16 * 1_048_576,
        description="larger request bodies are refused with 413 (transaction Bundles are the "
        "large ones)",
    )
    encryption_keys: str = Field(
        default="",
        description="kid:base64url AES-256 keys that encrypt stored resources (first is active); "
        "empty in development creates var/phi-keys.key",
    )
    blind_index_key: str = Field(
        default="",
        description="base64url HMAC key of the blind indexes; empty in development uses var/phi-keys.key",
    )
    default_count: int = Field(default=50, description="search results per page without _count")
    max_count: int = Field(default=1000, description="largest _count accepted")
    max_include: int = Field(
        default=1000, description="cap on _include/_revinclude results per page"
    )
    max_bundle_entries: int = Field(
        default=5000, description="entries a transaction or batch Bundle may hold"
    )
    max_json_depth: int = Field(default=64, description="deeper JSON is refused with 400")
    concurrent_writes: int = Field(
        default=16,
        ge=1,
        description="writes (create, update, delete, Bundles) in progress at once; the rest wait "
        "their turn (after their body is read and parsed). Those in flight share commits: on "
        "SQLite the write transactions that meet commit as one group, and every database's "
        "audit records are committed in batches",
    )
    writes_per_client: int = Field(
        default=0,
        ge=0,
        description="writes of one OAuth client in progress at once; its further writes wait for "
        "one of its own (their bodies already read, holding no slot). 0: three quarters of "
        "concurrent_writes (at least 1), so one client cannot take every slot",
    )
    import_url_prefixes: str = Field(
        default="",
        description="comma-separated URL prefixes $import may fetch NDJSON from (e.g. "
        "https://files.example.org/exports/); empty: $import is refused",
    )
    import_workers: int = Field(
        default=2,
        ge=0,
        description="worker processes that parse, validate, seal and index the lines of NDJSON "
        "imports ($import, medmesh phi import) and the creates of transactions of 64 creates or "
        "more; forked at first use, stopped with the service. On SQLite, with 2 or more, each "
        "worker also writes the import chunks (after the chunks of the same type before it) "
        "and the transactions of creates it prepared (the service only orchestrates): set the "
        "cores available. 0: all is prepared in the service's own process",
    )
    base_url: str = Field(
        default="", description="public base of /fhir (default http://<host>:<port>/fhir)"
    )

    @property
    def effective_writes_per_client(self) -> int:
        """:attr:`writes_per_client`, or three quarters of the write slots (at least 1)."""
        slots = self.concurrent_writes
        if self.writes_per_client:
            return min(self.writes_per_client, slots)
        return max(1, slots * 3 // 4)
