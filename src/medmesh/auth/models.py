"""auth-service tables (shared by its domains)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from medmesh.platform.db import UTCDateTime, new_metadata, utcnow


class AuthBase(DeclarativeBase):
    metadata = new_metadata()


class Role(AuthBase):
    """A named set of scopes granted to users (and service clients) that hold it."""

    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    scopes: Mapped[str] = mapped_column(Text, default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class User(AuthBase):
    """A person who signs in with a password (password grant)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fhir_user: Mapped[str | None] = mapped_column(String(128), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Client(AuthBase):
    """An OAuth client (confidential: it authenticates with a secret)."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128), default="")
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[str] = mapped_column(Text, default="")
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    access_token_ttl_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: ``client_secret_basic``/``client_secret_post`` (a secret) or ``private_key_jwt`` (a signed
    #: assertion checked with ``jwks`` or the keys at ``jwks_uri``; ``secret_hash`` is then empty).
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(32), default="client_secret_basic", server_default="client_secret_basic"
    )
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # A public client (a browser or mobile app) holds no secret: PKCE protects its codes.
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)


class ClientAssertionJti(AuthBase):
    """The ``jti`` of each accepted client assertion, kept until it expires (replay refusal)."""

    __tablename__ = "client_assertion_jtis"
    __table_args__ = (Index("ix_client_assertion_jtis_expires", "expires_at"),)

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SigningKeyRecord(AuthBase):
    """A token-signing key; the private half is encrypted at rest."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[bytes] = mapped_column()
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    publish_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RefreshToken(AuthBase):
    """An opaque refresh token, stored as its SHA-256; one family per original grant."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family", "family_id"),
        Index("ix_refresh_tokens_expires", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(40))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The patient a launch put in context (a practitioner's pick), for the refreshed tokens.
    patient: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: An ``online_access`` token's sign-in session (its id hash): it works while that lives.
    browser_session: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Revocation(AuthBase):
    """Tokens matching ``kind``/``value`` issued at or before ``revoked_at`` are refused.

    ``kind`` is ``jti`` (one access token), ``sid`` (a refresh family and the access tokens
    issued from it), ``sub`` (a user disabled or deleted) or ``client`` (a client disabled or
    deleted). A row is kept until ``keep_until``: no token it refuses outlives that.
    """

    __tablename__ = "revocations"
    __table_args__ = (
        Index("ix_revocations_revoked_at", "revoked_at"),
        Index("ix_revocations_keep_until", "keep_until"),
        Index("ix_revocations_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    keep_until: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginAttempts(AuthBase):
    """Failed sign-in counters per account (``user:<name>``) and per source (``ip:<addr>``)."""

    __tablename__ = "login_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuthorizationCode(AuthBase):
    """A one-time authorization code, stored as its SHA-256, bound to its client, redirect URI
    and PKCE challenge; ``family_id`` is the session its tokens carry (revoked on reuse)."""

    __tablename__ = "authorization_codes"
    __table_args__ = (Index("ix_authorization_codes_expires", "expires_at"),)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(Text, default="")
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    patient: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: EHR launch context: the encounter, and whether the app must show a patient banner
    #: (None: a standalone launch, which always must).
    encounter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    need_patient_banner: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: The sign-in session the code came from (the id hash), for ``online_access`` tokens.
    browser_session: Mapped[str | None] = mapped_column(String(64), nullable=True)
    family_id: Mapped[str] = mapped_column(String(40))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BrowserSession(AuthBase):
    """A browser's session with the sign-in pages (its cookie holds the id; stored hashed).

    It exists before sign-in, so that every form carries a CSRF token bound to it."""

    __tablename__ = "browser_sessions"
    __table_args__ = (Index("ix_browser_sessions_expires", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(AuthBase):
    """The scopes a person granted a client (remembered: the next launch asks again only for more)."""

    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LaunchContext(AuthBase):
    """An EHR launch (SMART App Launch, ``launch`` parameter): the context an EHR put up for one
    app, stored as the value's SHA-256; short-lived and used once."""

    __tablename__ = "launch_contexts"
    __table_args__ = (Index("ix_launch_contexts_expires", "expires_at"),)

    value_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    patient: Mapped[str | None] = mapped_column(String(64), nullable=True)
    encounter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    need_patient_banner: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
