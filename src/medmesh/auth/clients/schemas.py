"""Request and response models of the client admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from medmesh.auth.clients.jwks import check_jwks, check_jwks_uri

GrantType = Literal["client_credentials", "password", "refresh_token", "authorization_code"]
#: How a client authenticates at the token endpoint (RFC 7591 §2): a secret, or a JWT signed with
#: its private key (RFC 7523, SMART Backend Services).
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
PRIVATE_KEY_JWT = "private_key_jwt"
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$"
SCOPE_STRING = r"^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$|^$"


def _absolute_uri(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ValueError("must be an absolute http(s) URI without a fragment")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ValueError("http is allowed only for localhost; use https")
    return value


RedirectUri = Annotated[str, Field(max_length=2000), AfterValidator(_absolute_uri)]


def _default_grants() -> list[GrantType]:
    return ["client_credentials"]


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(default=None, pattern=IDENTIFIER)
    name: str = Field(default="", max_length=128)
    grant_types: list[GrantType] = Field(default_factory=_default_grants, min_length=1)
    scope: str = Field(default="", max_length=4000, pattern=SCOPE_STRING)
    roles: list[str] = Field(default_factory=list, max_length=32)
    audiences: list[str] = Field(default_factory=list, max_length=16)
    access_token_ttl_seconds: int | None = Field(default=None, ge=60, le=86_400)
    token_endpoint_auth_method: AuthMethod = Field(
        default="client_secret_basic",
        description="private_key_jwt: the client signs assertions with a key of `jwks` or "
        "`jwks_uri` (exactly one of them) and has no secret",
    )
    jwks: dict[str, Any] | None = Field(default=None, description="the client's public JWK Set")
    jwks_uri: str | None = Field(
        default=None, max_length=2048, description="where the client publishes its JWK Set"
    )
    public: bool = Field(
        default=False, description="a browser or mobile app: no secret, PKCE protects its codes"
    )
    redirect_uris: list[RedirectUri] = Field(
        default_factory=list, max_length=16, description="exact URIs codes may be sent to"
    )
    post_logout_redirect_uris: list[RedirectUri] = Field(
        default_factory=list, max_length=16, description="exact URIs a sign-out may return to"
    )

    @field_validator("jwks")
    @classmethod
    def _public_jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_jwks(value)
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_jwks_uri(value)

    @model_validator(mode="after")
    def _keys_match_method(self) -> Self:
        has_keys = (self.jwks is not None) + (self.jwks_uri is not None)
        if self.token_endpoint_auth_method == PRIVATE_KEY_JWT and has_keys != 1:
            raise ValueError("private_key_jwt needs exactly one of jwks and jwks_uri")
        if self.token_endpoint_auth_method != PRIVATE_KEY_JWT and has_keys:
            raise ValueError("jwks and jwks_uri are for private_key_jwt clients only")
        return self


class ClientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=128)
    grant_types: list[GrantType] | None = Field(default=None, min_length=1)
    scope: str | None = Field(default=None, max_length=4000, pattern=SCOPE_STRING)
    roles: list[str] | None = Field(default=None, max_length=32)
    audiences: list[str] | None = Field(default=None, max_length=16)
    access_token_ttl_seconds: int | None = Field(
        default=None, ge=60, le=86_400, description="null: the server's default lifetime"
    )
    disabled: bool | None = None
    redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=16)
    post_logout_redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=16)

    # Left out, a field keeps its value; only the token lifetime has a meaning for null (the
    # server's default). For the others null is refused rather than guessed at.
    @field_validator(
        "name",
        "grant_types",
        "scope",
        "roles",
        "audiences",
        "disabled",
        "redirect_uris",
        "post_logout_redirect_uris",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null (leave the field out to keep its value)")
        return value

    jwks: dict[str, Any] | None = Field(
        default=None, description="private_key_jwt clients: a new public JWK Set (drops jwks_uri)"
    )
    jwks_uri: str | None = Field(
        default=None,
        max_length=2048,
        description="private_key_jwt clients: a new JWK Set URL (drops jwks)",
    )

    @field_validator("jwks")
    @classmethod
    def _new_jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            raise ValueError("may not be null (leave the field out to keep its value)")
        check_jwks(value)
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _new_jwks_uri(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("may not be null (leave the field out to keep its value)")
        return check_jwks_uri(value)

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        if "jwks" in self.model_fields_set and "jwks_uri" in self.model_fields_set:
            raise ValueError("give one of jwks and jwks_uri")
        return self


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    client_id: str
    name: str
    grant_types: list[str]
    # The table column is ``scopes``; the API speaks RFC 6749's ``scope``.
    scope: str = Field(validation_alias=AliasChoices("scope", "scopes"))
    roles: list[str]
    audiences: list[str]
    access_token_ttl_seconds: int | None
    disabled: bool
    public: bool
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    created_at: datetime
    updated_at: datetime
    token_endpoint_auth_method: str
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None


class ClientWithSecret(ClientOut):
    client_secret: str | None = Field(
        description="shown once; only its hash is stored (null for a private_key_jwt client)"
    )


class ClientPage(BaseModel):
    data: list[ClientOut]
    next_after: str | None
