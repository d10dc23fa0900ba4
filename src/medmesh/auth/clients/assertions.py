"""Client authentication with a signed JWT (RFC 7523 §2.2, SMART Backend Services).

A ``private_key_jwt`` client sends ``client_assertion_type=`` :data:`CLIENT_ASSERTION_TYPE`
and ``client_assertion``: a JWT it signed (RS384 or ES384, RS256 and ES256 too) with a key of
its registered JWK Set, naming that key's ``kid``. The claims must say ``iss`` = ``sub`` = the
client id and ``aud`` = the token endpoint URL, expire within
:data:`MAX_ASSERTION_LIFETIME_SECONDS` and carry a ``jti`` never seen before: each accepted
``jti`` is stored until its assertion expires, in the database, so every replica refuses a
replay. Every refusal is ``invalid_client`` (RFC 6749 §5.2, RFC 7523 §3.2) and audited.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Final

from medmesh.auth.clients.jwks import ClientKeySource, JWKSUnavailable
from medmesh.auth.clients.repository import ClientAssertionJtiRepository
from medmesh.auth.clients.schemas import PRIVATE_KEY_JWT
from medmesh.auth.clients.service import ClientService, ClientView
from medmesh.auth.oauth import InvalidClient, InvalidRequest
from medmesh.auth.tokens.forms import ONE_METHOD
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.db import Database, SessionSource, utcnow
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens.jws import (
    PUBLIC_KEY_ALGORITHMS,
    InvalidJWS,
    decode_unverified,
    verify_decoded,
)

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME_SECONDS: Final = 300
#: Clock skew allowed for ``nbf``/``iat`` in the future; ``exp`` gets none.
CLOCK_SKEW_SECONDS: Final = 30
MAX_JTI_LENGTH: Final = 255
#: The algorithms an assertion may use: public-key signatures only (never HS256 or none).
ASSERTION_ALGORITHMS: Final = PUBLIC_KEY_ALGORITHMS


class AssertionRefused(InvalidClient):
    """An ``invalid_client`` whose reason is audited (the description says what failed)."""

    def __init__(self, message: str, reason: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.client_id = client_id

    def __repr__(self) -> str:
        return f"AssertionRefused(reason={self.reason!r}, client_id={self.client_id!r})"


def _audience_ok(aud: object, token_endpoint: str) -> bool:
    if isinstance(aud, str):
        return aud == token_endpoint
    return isinstance(aud, list) and token_endpoint in aud and all(isinstance(a, str) for a in aud)


def _number(claims: dict[str, Any], name: str) -> int | float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


class ClientAssertionVerifier:
    """Authenticates ``private_key_jwt`` clients at the token endpoint."""

    def __init__(
        self,
        clients: ClientService,
        keys: ClientKeySource,
        database: Database,
        audit: AuditTrail,
        token_endpoint: str,
    ) -> None:
        self.clients = clients
        self.keys = keys
        self.database = database
        self.audit = audit
        self.token_endpoint = token_endpoint

    async def authenticate(
        self,
        session: SessionSource,
        ctx: RequestOrigin,
        assertion_type: str,
        assertion: str,
        client_id: str | None = None,
    ) -> ClientView:
        """The client that signed ``assertion``; else :class:`AssertionRefused` (401), audited.
        ``client_id``, when the form carries one, must be the assertion's."""
        try:
            return await self._authenticate(session, assertion_type, assertion, client_id)
        except AssertionRefused as refused:
            await self.audit.record(
                AuditRecord.for_origin(
                    ctx,
                    "auth.client_assertion_refused",
                    outcome="failure",
                    actor=refused.client_id,
                    client_id=refused.client_id,
                    details={"reason": refused.reason},
                )
            )
            raise

    async def _authenticate(
        self, session: SessionSource, assertion_type: str, assertion: str, form_client: str | None
    ) -> ClientView:
        if assertion_type != CLIENT_ASSERTION_TYPE:
            raise AssertionRefused(
                f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}", "assertion_type"
            )
        try:
            decoded = decode_unverified(assertion)
        except InvalidJWS:
            raise AssertionRefused("client_assertion is not a JWT", "malformed") from None
        claims = decoded.claims
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(iss, str) or iss != sub:
            raise AssertionRefused("client_assertion iss and sub must both be the client_id", "iss")
        if form_client is not None and form_client != iss:
            raise AssertionRefused("client_id does not match the client_assertion", "iss", iss)
        client = await self.clients.lookup(session, iss)
        if client is None or client.disabled:
            raise AssertionRefused("client authentication failed", "unknown_client")
        if client.token_endpoint_auth_method != PRIVATE_KEY_JWT:
            raise AssertionRefused(
                "this client authenticates with a secret, not a client_assertion",
                "not_private_key_jwt",
                iss,
            )
        if decoded.alg not in ASSERTION_ALGORITHMS:
            raise AssertionRefused(
                "client_assertion must be signed RS256, RS384, ES256 or ES384", "algorithm", iss
            )
        kid = decoded.kid
        if kid is None:
            raise AssertionRefused("client_assertion header has no kid", "no_kid", iss)
        try:
            keys = await self.keys.keys(client.jwks, client.jwks_uri, kid)
        except JWKSUnavailable as exc:
            raise AssertionRefused(
                f"the client's JWK Set is unavailable: {exc.reason}", "jwks_unavailable", iss
            ) from None
        key = keys.get(kid)
        if key is None:
            raise AssertionRefused(
                "client_assertion kid names no key of the client", "unknown_kid", iss
            )
        try:
            verify_decoded(decoded, key, ASSERTION_ALGORITHMS)
        except InvalidJWS as exc:
            raise AssertionRefused(f"client_assertion: {exc}", "signature", iss) from None
        exp = self._check_claims(claims, iss)
        jti = claims["jti"]
        stored = await ClientAssertionJtiRepository(session()).remember(
            iss, jti, datetime.fromtimestamp(exp, UTC)
        )
        if not stored:
            raise AssertionRefused("client_assertion was already used (jti)", "replayed", iss)
        return client

    def _check_claims(self, claims: dict[str, Any], client_id: str) -> float:
        """The assertion's ``exp`` once ``aud``, ``exp``, ``nbf``, ``iat`` and ``jti`` hold."""
        if not _audience_ok(claims.get("aud"), self.token_endpoint):
            raise AssertionRefused(
                f"client_assertion aud must be the token endpoint {self.token_endpoint}",
                "audience",
                client_id,
            )
        now = time.time()
        exp = _number(claims, "exp")
        if exp is None:
            raise AssertionRefused("client_assertion has no exp", "no_exp", client_id)
        if exp <= now:
            raise AssertionRefused("client_assertion has expired", "expired", client_id)
        if exp > now + MAX_ASSERTION_LIFETIME_SECONDS:
            raise AssertionRefused(
                f"client_assertion exp is more than {MAX_ASSERTION_LIFETIME_SECONDS} s ahead",
                "exp_too_far",
                client_id,
            )
        for name in ("nbf", "iat"):
            value = claims.get(name)
            moment = _number(claims, name)
            if value is not None and (moment is None or moment > now + CLOCK_SKEW_SECONDS):
                raise AssertionRefused(
                    f"client_assertion {name} is in the future", "not_yet_valid", client_id
                )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise AssertionRefused("client_assertion needs a jti", "no_jti", client_id)
        return exp

    async def forget_expired(self) -> int:
        """Delete the jtis of assertions that have expired (the cleanup job)."""
        async with self.database.write_lock, self.database.unit_of_work() as session:
            return await ClientAssertionJtiRepository(session).delete_expired(utcnow())


def assertion_parameters(authorization: str | None, form: dict[str, str]) -> tuple[str, str] | None:
    """``(client_assertion_type, client_assertion)`` when the request authenticates with an
    assertion, else None; ``invalid_request`` when it also uses another method (RFC 6749 §2.3
    and §5.2: a request must not use more than one client authentication mechanism)."""
    if "client_assertion" not in form and "client_assertion_type" not in form:
        return None
    if authorization is not None or "client_secret" in form:
        raise InvalidRequest(ONE_METHOD)
    assertion = form.get("client_assertion")
    if not assertion:
        raise InvalidClient("client_assertion is required with client_assertion_type")
    return form.get("client_assertion_type", ""), assertion
