"""Response models and form descriptions (for the OpenAPI document) of the OAuth endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    patient: str | None = Field(default=None, description="SMART: the patient in context")
    need_patient_banner: bool | None = None
    fhirUser: str | None = None


class IntrospectionResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    active: bool
    scope: str | None = None
    client_id: str | None = None
    token_type: str | None = None
    exp: int | None = None
    iat: int | None = None
    nbf: int | None = None
    sub: str | None = None
    aud: list[str] | str | None = None
    iss: str | None = None
    jti: str | None = None


class RevocationEntry(BaseModel):
    key: str = Field(description="hex SHA-256 of `<kind>:<value>`, kind jti, sid, sub or client")
    revoked_at: int = Field(
        description="second of the revocation: a sub or client entry refuses tokens issued "
        "(iat) up to this second; a jti or sid entry refuses every token that carries it"
    )
    keep_until: int = Field(description="after this second no token the entry refuses is alive")


class RevocationList(BaseModel):
    revocations: list[RevocationEntry]
    cursor: str = Field(description="pass as `after` to read what was revoked since")
    complete: bool = Field(description="false: more entries follow, ask again with the cursor")


class UserInfo(BaseModel):
    sub: str
    preferred_username: str
    roles: list[str]
    patient: str | None = None
    fhirUser: str | None = None


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }


_CLIENT = {
    "client_id": {"type": "string", "description": "client_secret_post (or use HTTP Basic)"},
    "client_secret": {"type": "string"},
}
TOKEN_FORM = _form(
    {
        "grant_type": {
            "type": "string",
            "enum": ["client_credentials", "password", "refresh_token", "authorization_code"],
        },
        "scope": {
            "type": "string",
            "description": "space-separated; defaults to everything allowed",
        },
        "audience": {
            "type": "string",
            "description": "space-separated services (medmesh-phi, ...)",
        },
        "username": {"type": "string"},
        "password": {"type": "string", "format": "password"},
        "refresh_token": {"type": "string"},
        "code": {"type": "string", "description": "authorization_code: the code"},
        "redirect_uri": {"type": "string", "description": "authorization_code: as sent"},
        "code_verifier": {"type": "string", "description": "authorization_code: PKCE verifier"},
        **_CLIENT,
        "client_assertion_type": {
            "type": "string",
            "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
            "description": "private_key_jwt clients (RFC 7523), instead of a secret",
        },
        "client_assertion": {
            "type": "string",
            "description": "a JWT the client signed: iss = sub = client_id, aud = this endpoint, "
            "exp at most 5 minutes ahead, a jti never used before, kid in its header",
        },
    },
    ["grant_type"],
)
INTROSPECT_FORM = _form(
    {"token": {"type": "string"}, "token_type_hint": {"type": "string"}, **_CLIENT}, ["token"]
)
REVOKE_FORM = _form(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
        **_CLIENT,
    },
    ["token"],
)
