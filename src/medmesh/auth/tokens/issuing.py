"""Signing what the token endpoint hands out: access tokens, ID tokens and a user's refresh
tokens (stored as their SHA-256 only)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.clients.service import ClientView
from medmesh.auth.config import AuthSettings
from medmesh.auth.keys.service import SigningKeyService
from medmesh.auth.models import RefreshToken, User
from medmesh.auth.oauth import InvalidRequest
from medmesh.auth.tokens.repository import RefreshTokenRepository
from medmesh.platform.db import utcnow
from medmesh.platform.tokens import InvalidScope, ScopeSet, narrow

REFRESH_PREFIX = "mmrt_"
#: No access token lives longer (the settings and client lifetimes are capped at a day): a
#: session, user or client revocation is kept this long after it was made.
LONGEST_ACCESS_TOKEN_SECONDS = 86_400


def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the access token's hash under the ID token's alg."""
    digest = (hashlib.sha384 if alg.endswith("384") else hashlib.sha256)(
        access_token.encode("ascii")
    ).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def covered(scope: str, allowed: ScopeSet) -> str:
    """The scopes of ``scope`` that ``allowed`` covers (silently dropping the others)."""
    kept = []
    for item in ScopeSet(scope):
        try:
            narrow(item, allowed)
        except InvalidScope:
            continue
        kept.append(item)
    return " ".join(kept)


@dataclass(slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    #: SMART launch context of the response (``patient``, ``need_patient_banner``, ``fhirUser``).
    context: dict[str, Any] = field(default_factory=dict)

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        body.update(self.context)
        return body


class TokenIssuer:
    """Signs tokens with the key ring's active key and stores refresh tokens."""

    def __init__(self, settings: AuthSettings, keys: SigningKeyService) -> None:
        self.settings = settings
        self.keys = keys

    @staticmethod
    def audiences(client: ClientView, requested: str | None) -> list[str]:
        """The ``aud`` of a token: the client's audiences, or the ones it asked for of them."""
        if not requested:
            return list(client.audiences)
        wanted = requested.split()
        unknown = [a for a in wanted if a not in client.audiences]
        if unknown:
            raise InvalidRequest("audience is not allowed for this client", code="invalid_target")
        return wanted

    def issue_access_token(
        self,
        client: ClientView,
        *,
        sub: str,
        scope: str,
        roles: list[str],
        audiences: list[str],
        patient: str | None = None,
        fhir_user: str | None = None,
        sid: str | None = None,
    ) -> tuple[str, int]:
        """Sign an access token (ARCHITECTURE §4 claims); returns it and its lifetime."""
        ttl = client.access_token_ttl_seconds or self.settings.access_token_ttl_seconds
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": sub,
            "aud": audiences,
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_hex(16),
            "scope": scope,
            "client_id": client.client_id,
            "roles": roles,
        }
        if patient is not None:
            claims["patient"] = patient
        if fhir_user is not None:
            claims["fhirUser"] = fhir_user
        if sid is not None:
            # The session (refresh family): revoking it refuses its access tokens too.
            claims["sid"] = sid
        return self.keys.signer.sign(claims), ttl

    def id_token(
        self,
        client: ClientView,
        user: User,
        access_token: str,
        nonce: str | None = None,
        auth_time: datetime | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": user.id,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + self.settings.id_token_ttl_seconds,
            "iat": now,
            "auth_time": int(auth_time.timestamp()) if auth_time else now,
            "at_hash": at_hash(access_token, self.keys.signing_alg),
            "preferred_username": user.username,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if user.fhir_user:
            claims["fhirUser"] = user.fhir_user
        return self.keys.signer.sign(claims)

    async def user_tokens(
        self,
        session: AsyncSession,
        client: ClientView,
        user: User,
        scope: str,
        audiences: list[str],
        family_id: str | None,
        *,
        nonce: str | None = None,
        patient: str | None = None,
        auth_time: datetime | None = None,
        refresh: bool = True,
        browser_session: str | None = None,
    ) -> IssuedTokens:
        """A user's access token, a refresh token (when the client may refresh and ``refresh``)
        and an ID token (``openid`` in scope) of session ``family_id``. A refresh token bound to
        ``browser_session`` (``online_access``) works only while that sign-in lasts."""
        family_id = family_id or uuid.uuid4().hex
        access, ttl = self.issue_access_token(
            client,
            sub=user.id,
            scope=scope,
            roles=list(user.roles),
            audiences=audiences,
            patient=patient or user.patient_id,
            fhir_user=user.fhir_user,
            sid=family_id,
        )
        issued = IssuedTokens(access, ttl, scope)
        if refresh and "refresh_token" in client.grant_types:
            raw = REFRESH_PREFIX + secrets.token_urlsafe(32)
            now = utcnow()
            await RefreshTokenRepository(session).add(
                RefreshToken(
                    id=uuid.uuid4().hex,
                    token_hash=hash_refresh_token(raw),
                    family_id=family_id,
                    client_id=client.client_id,
                    user_id=user.id,
                    scope=scope,
                    audiences=audiences,
                    patient=patient,
                    browser_session=browser_session,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
                )
            )
            issued.refresh_token = raw
        if "openid" in scope.split():
            issued.id_token = self.id_token(client, user, access, nonce, auth_time)
        return issued
