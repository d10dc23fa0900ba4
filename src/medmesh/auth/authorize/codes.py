"""Authorization codes: short-lived, one-time, bound to the client, the redirect URI and the
PKCE challenge (S256). A code presented twice revokes the session its first use started, since
either the app or an attacker holds a copy (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.authorize.repository import (
    AuthorizationCodeRepository,
    BrowserSessionRepository,
)
from medmesh.auth.authorize.requests import AuthorizationRequest
from medmesh.auth.clients.service import ClientView
from medmesh.auth.models import AuthorizationCode
from medmesh.auth.oauth import InvalidGrant, InvalidRequest, UnauthorizedClient
from medmesh.auth.tokens.issuing import LONGEST_ACCESS_TOKEN_SECONDS, IssuedTokens
from medmesh.auth.tokens.repository import RefreshTokenRepository
from medmesh.auth.tokens.service import TokenService
from medmesh.auth.users.repository import UserRepository
from medmesh.platform.audit import AuditRecord
from medmesh.platform.db import utcnow
from medmesh.platform.origin import RequestOrigin

CODE_PREFIX = "mmac_"
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
#: Audience of tokens whose request named a FHIR base (``aud``): phi-service serves them.
FHIR_AUDIENCE = "medmesh-phi"
USERINFO_AUDIENCE = "medmesh-auth"


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class AuthorizationCodes:
    def __init__(self, tokens: TokenService, ttl_seconds: int) -> None:
        self.tokens = tokens
        self.ttl = timedelta(seconds=ttl_seconds)

    async def issue(
        self,
        session: AsyncSession,
        request: AuthorizationRequest,
        user_id: str,
        scope: str,
        patient: str | None,
        auth_time: datetime,
        *,
        browser_session: str | None = None,
        encounter: str | None = None,
        need_patient_banner: bool | None = None,
    ) -> str:
        """A new code for what the person granted (only its hash is stored): the sign-in
        session it came from and, for an EHR launch, the encounter and whether the app must
        show a patient banner."""
        raw = CODE_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        audiences = [FHIR_AUDIENCE] if request.aud else list(request.client.audiences)
        if "openid" in scope.split() and USERINFO_AUDIENCE not in audiences:
            # The token also reads the person's claims at userinfo (this service).
            audiences.append(USERINFO_AUDIENCE)
        await AuthorizationCodeRepository(session).add(
            AuthorizationCode(
                code_hash=_hash(raw),
                client_id=request.client.client_id,
                user_id=user_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                scope=scope,
                audiences=audiences,
                nonce=request.nonce,
                patient=patient,
                encounter=encounter,
                need_patient_banner=need_patient_banner,
                browser_session=browser_session,
                family_id=uuid.uuid4().hex,
                auth_time=auth_time,
                created_at=now,
                expires_at=now + self.ttl,
            )
        )
        return raw

    async def exchange(
        self,
        session: AsyncSession,
        ctx: RequestOrigin,
        client: ClientView,
        code: str | None,
        redirect_uri: str | None,
        verifier: str | None,
    ) -> IssuedTokens:
        """The tokens for a code (grant_type=authorization_code); ``invalid_grant`` otherwise."""
        if "authorization_code" not in client.grant_types:
            raise UnauthorizedClient("this client may not use the authorization_code grant")
        if not code or not redirect_uri:
            raise InvalidRequest("code and redirect_uri are required")
        if not verifier:
            raise InvalidRequest("code_verifier is required (PKCE)")
        repo = AuthorizationCodeRepository(session)
        stored = await repo.by_hash(_hash(code))
        now = utcnow()
        if stored is None or stored.client_id != client.client_id:
            raise InvalidGrant("the authorization code is invalid")
        if stored.used_at is not None or not await repo.mark_used(stored.code_hash, now):
            await self._revoke_after_reuse(session, ctx, stored)
            raise InvalidGrant("the authorization code was already used; its tokens are revoked")
        if stored.expires_at <= now:
            raise InvalidGrant("the authorization code has expired")
        if redirect_uri != stored.redirect_uri:
            raise InvalidGrant("redirect_uri differs from the authorization request's")
        if not _VERIFIER.match(verifier) or not hmac.compare_digest(
            s256(verifier), stored.code_challenge
        ):
            raise InvalidGrant("code_verifier does not match the code_challenge")
        user = await UserRepository(session).get(stored.user_id)
        if user is None or user.disabled:
            raise InvalidGrant("the user of this code is no longer active")
        scopes = stored.scope.split()
        # online_access: the refresh token lives while the sign-in does; offline_access wins.
        online = "online_access" in scopes and "offline_access" not in scopes
        issued = await self.tokens.issuer.user_tokens(
            session,
            client,
            user,
            stored.scope,
            list(stored.audiences),
            stored.family_id,
            nonce=stored.nonce,
            patient=stored.patient,
            auth_time=stored.auth_time,
            refresh="offline_access" in scopes or "online_access" in scopes,
            browser_session=stored.browser_session if online else None,
        )
        if stored.patient is not None:
            issued.context["patient"] = stored.patient
            # A standalone launch has no EHR around the app to show the patient.
            banner = stored.need_patient_banner
            issued.context["need_patient_banner"] = True if banner is None else banner
        if stored.encounter is not None:
            issued.context["encounter"] = stored.encounter
        if user.fhir_user and "fhirUser" in scopes:
            issued.context["fhirUser"] = user.fhir_user
        await self.tokens.audit.record(
            AuditRecord.for_origin(
                ctx,
                "auth.token_issued",
                actor=user.id,
                client_id=client.client_id,
                details={"grant_type": "authorization_code", "scope": stored.scope},
            )
        )
        return issued

    async def forget_expired(self) -> int:
        """Delete expired codes and sign-in sessions (the cleanup job); returns how many."""
        database, now = self.tokens.database, utcnow()
        async with database.write_lock, database.unit_of_work() as session:
            # A code outlives its expiry as long as its session's access tokens may live:
            # disconnecting the app finds that session through it.
            kept = timedelta(seconds=LONGEST_ACCESS_TOKEN_SECONDS)
            codes = await AuthorizationCodeRepository(session).delete_expired(now - kept)
            browsers = await BrowserSessionRepository(session).delete_expired(now)
        return codes + browsers

    async def _revoke_after_reuse(
        self, session: AsyncSession, ctx: RequestOrigin, stored: AuthorizationCode
    ) -> None:
        family, user_id, client_id = stored.family_id, stored.user_id, stored.client_id
        # The request fails; the revocation must survive its rollback.
        await session.rollback()
        database = self.tokens.database
        async with database.write_lock, database.unit_of_work() as own:
            await RefreshTokenRepository(own).revoke_family(family, utcnow())
            await self.tokens.revoker.record_revocation(own, "sid", family)
        await self.tokens.audit.record(
            AuditRecord.for_origin(
                ctx,
                "auth.code_reuse",
                outcome="failure",
                actor=user_id,
                client_id=client_id,
                details={"family": family, "action": "session_revoked"},
            )
        )
