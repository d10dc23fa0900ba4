"""RFC 7591 client metadata: what a developer sends and what the server answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from medmesh.auth.oauth import OAuthError


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a metadata value is invalid (or not allowed here)."""

    status, code = 400, "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2: a redirect URI is invalid."""

    status, code = 400, "invalid_redirect_uri"


class RegistrationRequest(BaseModel):
    """The client metadata of RFC 7591 §2 this server uses; other members are ignored (§2)."""

    model_config = ConfigDict(extra="ignore")

    redirect_uris: list[str] = Field(default_factory=list, max_length=16)
    token_endpoint_auth_method: str = Field(
        default="client_secret_basic",
        description="client_secret_basic, client_secret_post, private_key_jwt or none (a public "
        "app, authorization_code with PKCE)",
    )
    grant_types: list[str] = Field(
        default_factory=lambda: ["authorization_code"],
        description="authorization_code, refresh_token, client_credentials",
    )
    response_types: list[str] = Field(default_factory=lambda: ["code"])
    client_name: str = Field(default="", max_length=128)
    scope: str | None = Field(default=None, max_length=4000)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = Field(default=None, max_length=2048)


class RegistrationResponse(BaseModel):
    """RFC 7591 §3.2.1: the client's id, its secret (symmetric clients only) and its metadata."""

    client_id: str
    client_id_issued_at: int
    client_secret: str | None = Field(default=None, description="shown once")
    client_secret_expires_at: int | None = Field(default=None, description="0: never expires")
    client_name: str
    redirect_uris: list[str]
    grant_types: list[str]
    response_types: list[str]
    token_endpoint_auth_method: str
    scope: str
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
