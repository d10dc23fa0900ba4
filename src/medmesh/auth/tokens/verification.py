"""Checking access tokens this issuer signed (introspection and revocation).

A token is an immutable string: once its signature has been verified against a key of the ring,
the result cannot change while that key is in the ring. Resource servers call introspection for
the same token again and again, so verified claims are remembered (bounded; forgotten when the
key ring changes). The time checks (``exp``, ``nbf``) run on every call, and revocation is checked
by the caller on every call too.
"""

from __future__ import annotations

import time
from typing import Any

from medmesh.auth.keys.service import SigningKeyService
from medmesh.platform.tokens import jws

LEEWAY_SECONDS = 30


class IssuedTokenValidator:
    """The claims of an access token issued here, or ``None`` when it is not (or no longer) valid."""

    def __init__(self, keys: SigningKeyService, issuer: str, capacity: int = 50_000) -> None:
        self.keys = keys
        self.issuer = issuer
        self.capacity = capacity
        self._ring: object = None
        self._verified: dict[str, dict[str, Any]] = {}

    def claims(self, token: str) -> dict[str, Any] | None:
        ring = self.keys.verification_keys()
        if ring is not self._ring:
            # A key was added or retired: what was verified with the old ring is re-checked.
            self._ring, self._verified = ring, {}
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token, ring)
            if claims is None:
                return None
            if len(self._verified) >= self.capacity:
                self._verified.clear()
            self._verified[token] = claims
        now = time.time()
        if claims["exp"] + LEEWAY_SECONDS < now or claims.get("nbf", 0) - LEEWAY_SECONDS > now:
            return None
        return claims

    def _verify(self, token: str, ring: dict[str, jws.VerificationKey]) -> dict[str, Any] | None:
        try:
            _, claims = jws.verify_compact(token, ring)
        except jws.InvalidJWS:
            return None
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            return None
        if claims.get("iss") != self.issuer or not isinstance(claims.get("jti"), str):
            return None
        return claims
