"""Access-token verification on the resource-server side, and FastAPI dependencies.

:class:`TokenVerifier` checks a bearer token locally: RS256, RS384, ES256 or ES384
against the auth-service JWKS (cached, re-fetched when an unknown ``kid`` arrives but at most
once per ``refresh_min_seconds``, so forged kids cannot make it hammer the auth
server), or HS256 with a shared secret. Then the claims: ``exp`` (required),
``nbf``, ``iat``, ``iss``, ``aud`` and ``sub``. Every failure is a 401
``invalid_token`` with an RFC 6750 ``WWW-Authenticate`` header; messages never
echo the token. With ``revocations`` (a :class:`RevocationCheck`: auth's own
cache, or a resource server's ``RevocationFeed``) every request, remembered
tokens included, is also refused when its token, session (``sid``), user or
client was revoked.

Routes declare their needs with a typed alias::

    PatientsRead = Annotated[Principal, Depends(RequireScopes("user/Patient.r"))]
"""

# No ``from __future__ import annotations``: FastAPI resolves the signature of
# ``RequireScopes.__call__`` at runtime and cannot evaluate string annotations there.

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends, Request

from medmesh.platform.errors import Forbidden, Unauthorized
from medmesh.platform.logging import get_logger
from medmesh.platform.tokens import jws
from medmesh.platform.tokens.scopes import InvalidScope, ScopeSet, SmartScope, is_smart_scope

REALM = "medmesh"
#: How many verified tokens a verifier remembers (then it starts over).
VERIFIED_CACHE_SIZE = 10_000
_log = get_logger("medmesh.auth")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the verified claims of an access token."""

    sub: str
    client_id: str
    roles: frozenset[str]
    scopes: ScopeSet
    raw_scope: str
    patient: str | None
    fhir_user: str | None
    audience: tuple[str, ...]
    jti: str | None
    issued_at: datetime
    expires_at: datetime
    #: The session (refresh-token family) the token was issued in, for user tokens.
    sid: str | None = None

    def has_scope(self, scope: str) -> bool:
        """True when the token holds ``scope`` (SMART scopes: when one covers it)."""
        return self.scopes.has(scope)

    @property
    def is_service(self) -> bool:
        """True for a client acting for itself (client_credentials): no human involved."""
        return bool(self.client_id) and self.sub == self.client_id


def invalid_token(description: str) -> Unauthorized:
    """The 401 ``invalid_token`` error with its RFC 6750 challenge."""
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
    return Unauthorized(description, code="invalid_token", headers={"WWW-Authenticate": challenge})


class RevocationCheck(Protocol):
    """What the verifier asks about each request's token (kept in memory, no I/O per request)."""

    async def refuses(
        self, *, jti: str | None, sid: str | None, sub: str, client_id: str, issued_at: float
    ) -> bool:
        """True when the token, its session, its user or its client was revoked.

        May raise (a 503 when the revocation state is unknown): the request is then refused."""
        ...


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise invalid_token(f"token has no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_token(f"token {name} claim is not a number")
    return float(value)


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_token(f"token {name} claim is not a string")
    return value


class TokenVerifier:
    """Verifies access tokens for one service (its ``audience``) from one ``issuer``."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_url: str = "",
        hs256_secret: str = "",
        jwks: Mapping[str, Any] | None = None,
        leeway: float = 30,
        refresh_min_seconds: float = 10,
        cache_seconds: float = 300,
        http: httpx.AsyncClient | None = None,
        revocations: RevocationCheck | None = None,
    ) -> None:
        if not (jwks_url or hs256_secret or jwks is not None):
            raise ValueError("TokenVerifier needs jwks_url, jwks or hs256_secret")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.leeway = leeway
        self.refresh_min_seconds = refresh_min_seconds
        self.cache_seconds = cache_seconds
        self.revocations = revocations
        self._http = http
        self._hs_key = jws.VerificationKey.hs256(hs256_secret) if hs256_secret else None
        self._static_keys = jws.keys_from_jwks(jwks) if jwks is not None else {}
        self._fetched_keys: dict[str, jws.VerificationKey] = {}
        self._jwks_keys = dict(self._static_keys)
        self._verified: dict[str, tuple[Principal, float, bool]] = {}
        self._fetched_at = float("-inf")
        self._last_attempt = float("-inf")
        self._lock = asyncio.Lock()
        allowed = {jws.HS256} if self._hs_key else set()
        if jwks_url or jwks is not None:
            allowed |= jws.PUBLIC_KEY_ALGORITHMS
        self.algorithms: frozenset[str] = frozenset(allowed)
        self.jwks_fetches = 0

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` and return its :class:`Principal`; raises 401 ``invalid_token``.

        A client reuses its access token for many requests: a token verified once is
        remembered (by its exact string) until it expires, so later requests skip the
        signature check. The memory is dropped whenever the key set changes; revocation is
        checked on every call, remembered or not.
        """
        remembered = self._verified.get(token)
        if (
            remembered is not None
            and time.time() < remembered[1]
            # A key fetched from the JWKS is trusted while the key set is fresh; a shared
            # secret or a configured key set does not go stale.
            and (not remembered[2] or time.monotonic() - self._fetched_at <= self.cache_seconds)
        ):
            principal = remembered[0]
            if self.revocations is not None:
                await self._check_revoked(principal)
            return principal
        decoded = self._decode(token)
        key = self._select_key(decoded)
        if decoded.alg in jws.PUBLIC_KEY_ALGORITHMS and decoded.kid is not None and self.jwks_url:
            stale = time.monotonic() - self._fetched_at > self.cache_seconds
            if key is None or stale:
                await self.refresh_jwks(force=key is None)
                key = self._select_key(decoded)
        principal = self._check(decoded, key)
        await self._check_revoked(principal)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        fetched = key is not None and key is self._fetched_keys.get(decoded.kid or "")
        self._verified[token] = (
            principal,
            principal.expires_at.timestamp() + self.leeway,
            fetched,
        )
        return principal

    async def _check_revoked(self, principal: Principal) -> None:
        if self.revocations is not None:
            if principal.jti is None:
                raise invalid_token("token has no jti claim")
            if await self.revocations.refuses(
                jti=principal.jti,
                sid=principal.sid,
                sub=principal.sub,
                client_id=principal.client_id,
                issued_at=principal.issued_at.timestamp(),
            ):
                raise invalid_token("token has been revoked")

    def verify_cached(self, token: str) -> Principal:
        """Verify ``token`` with the keys already cached, without I/O.

        Does not fetch the JWKS and does not consult ``revocations``: request
        paths use :meth:`verify`; this exists for benchmarks and sync callers.
        """
        decoded = self._decode(token)
        return self._check(decoded, self._select_key(decoded))

    async def refresh_jwks(self, *, force: bool = False) -> None:
        """Fetch the JWKS unless fetched (or tried) less than ``refresh_min_seconds`` ago.

        Without ``force`` it also waits for the cache to be ``cache_seconds``
        old. A failed fetch keeps the keys already known.
        """
        if not self.jwks_url:
            return
        async with self._lock:
            now = time.monotonic()
            if now - self._last_attempt < self.refresh_min_seconds:
                return
            if not force and now - self._fetched_at < self.cache_seconds:
                return
            self._last_attempt = now
            self.jwks_fetches += 1
            try:
                keys = await self._fetch_jwks()
            except (httpx.HTTPError, ValueError) as exc:
                _log.warning("jwks_fetch_failed", url=self.jwks_url, error=type(exc).__name__)
                return
            if keys.keys() != self._fetched_keys.keys():
                self._verified.clear()  # a key may have been withdrawn
            self._fetched_keys = keys
            self._jwks_keys = {**self._static_keys, **keys}
            self._fetched_at = now

    def set_jwks(self, jwks: Mapping[str, Any]) -> None:
        """Replace the static JWK Set (an issuer verifying its own tokens follows its key ring)."""
        self._static_keys = jws.keys_from_jwks(jwks)
        self._jwks_keys = {**self._static_keys, **self._fetched_keys}
        self._verified.clear()

    async def aclose(self) -> None:
        """Release resources. Each JWKS fetch uses a short-lived client (or the caller's
        ``http``, which the caller closes), so there is nothing to close today."""

    async def _fetch_jwks(self) -> dict[str, jws.VerificationKey]:
        if self._http is not None:
            response = await self._http.get(self.jwks_url)
        else:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.jwks_url)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError("JWKS is not a JSON object")
        return jws.keys_from_jwks(body)

    def _decode(self, token: str) -> jws.DecodedJWS:
        try:
            decoded = jws.decode_unverified(token)
        except jws.InvalidJWS as exc:
            raise invalid_token(exc.message) from None
        if decoded.alg not in self.algorithms:
            raise invalid_token("token algorithm is not allowed")
        return decoded

    def _select_key(self, decoded: jws.DecodedJWS) -> jws.VerificationKey | None:
        if decoded.alg == jws.HS256:
            return self._hs_key
        kid = decoded.kid
        return self._jwks_keys.get(kid) if kid is not None else None

    def _check(self, decoded: jws.DecodedJWS, key: jws.VerificationKey | None) -> Principal:
        if key is None:
            raise invalid_token("token is signed with an unknown key")
        try:
            jws.verify_decoded(decoded, key, self.algorithms)
        except jws.InvalidJWS as exc:
            raise invalid_token(exc.message) from None
        return self._principal(decoded.claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        now = time.time()
        exp = _number(claims, "exp", required=True)
        assert exp is not None
        if now > exp + self.leeway:
            raise invalid_token("token has expired")
        nbf = _number(claims, "nbf", required=False)
        if nbf is not None and now + self.leeway < nbf:
            raise invalid_token("token is not yet valid")
        iat = _number(claims, "iat", required=True)
        assert iat is not None
        if now + self.leeway < iat:
            raise invalid_token("token is issued in the future")
        if claims.get("iss") != self.issuer:
            raise invalid_token("token issuer is not trusted")
        aud = claims.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        if self.audience not in audience or not all(isinstance(a, str) for a in audience):
            raise invalid_token("token is not meant for this service")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise invalid_token("token has no sub claim")
        raw_scope = _optional_str(claims, "scope") or ""
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise invalid_token("token roles claim is not a list of strings")
        try:
            scopes = ScopeSet.parse(raw_scope)
        except InvalidScope:
            raise invalid_token("token scope claim is not valid") from None
        return Principal(
            sub=sub,
            client_id=_optional_str(claims, "client_id") or _optional_str(claims, "azp") or "",
            roles=frozenset(roles),
            scopes=scopes,
            raw_scope=raw_scope,
            patient=_optional_str(claims, "patient"),
            fhir_user=_optional_str(claims, "fhirUser"),
            audience=audience,
            jti=_optional_str(claims, "jti"),
            issued_at=datetime.fromtimestamp(iat, UTC),
            expires_at=datetime.fromtimestamp(exp, UTC),
            sid=_optional_str(claims, "sid"),
        )


def bearer_token(request: Request) -> str:
    """The bearer token of the ``Authorization`` header; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized(
            "a bearer token is required", headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'}
        )
    token = token.strip()
    if not token:
        raise invalid_token("the bearer token is empty")
    return token


async def get_principal(request: Request) -> Principal:
    """The verified caller (FastAPI dependency); also stored on ``request.state.principal``."""
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(bearer_token(request))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def _smart_requirement_met(scopes: ScopeSet, wanted: SmartScope) -> bool:
    # A requirement names a type and permissions; any context (patient, user, system)
    # that grants them will do. The repository then scopes rows to the principal.
    return all(
        any(
            p in held.permissions and held.resource_type in ("*", wanted.resource_type)
            for held in scopes.smart
        )
        for p in wanted.permissions
    )


class RequireScopes:
    """A dependency that returns the :class:`Principal` when it holds the scopes, else 403.

    Scopes are plain (``auth:admin``) or SMART requirements (``user/Patient.r``:
    some patient, user or system scope grants Patient read). All are required,
    or one of them with ``any_of=True``.
    """

    def __init__(self, *scopes: str, any_of: bool = False) -> None:
        if not scopes:
            raise ValueError("RequireScopes needs at least one scope")
        self.scopes = scopes
        self.any_of = any_of
        self._requirements: list[SmartScope | str] = [
            SmartScope.parse(s) if is_smart_scope(s) else s for s in scopes
        ]

    def is_satisfied_by(self, principal: Principal) -> bool:
        """True when ``principal`` holds the required scopes."""
        held = principal.scopes
        met = (
            _smart_requirement_met(held, r) if isinstance(r, SmartScope) else r in held.tokens
            for r in self._requirements
        )
        return any(met) if self.any_of else all(met)

    async def __call__(self, request: Request) -> Principal:
        # Verifies the token itself rather than depending on ``CurrentPrincipal``: one
        # dependency level less is a measurable share of a fast endpoint's time.
        principal = await get_principal(request)
        if not self.is_satisfied_by(principal):
            wanted = " ".join(self.scopes)
            challenge = f'Bearer realm="{REALM}", error="insufficient_scope", scope="{wanted}"'
            raise Forbidden(
                f"this request needs the scope{'s' if len(self.scopes) > 1 else ''} {wanted}"
                + (" (any one)" if self.any_of and len(self.scopes) > 1 else ""),
                code="insufficient_scope",
                headers={"WWW-Authenticate": challenge},
            )
        return principal

    def __repr__(self) -> str:
        return f"RequireScopes({', '.join(map(repr, self.scopes))}, any_of={self.any_of})"
