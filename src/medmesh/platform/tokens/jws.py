"""Compact JWS (RFC 7515): parse a token and verify its signature against keys.

A token is verified against an explicit allow-list of algorithms *and* against its key's
algorithm (every key is bound to one, see :mod:`.keys`), so ``alg: none``, the "HS256 signed with
the public key" forgery and a token relabelled to another algorithm or curve fail by
construction. Tokens are issued by :meth:`.keys.SigningKey.sign`; the algorithms are in
:mod:`.jwa`, JWK import, export and thumbprints in :mod:`.jwk`.

This module checks signatures only; the claims (``exp``, ``iss``, ``aud``...)
are checked by :mod:`medmesh.platform.tokens.verifier`. It is built on
``cryptography`` and ``orjson`` rather than a JOSE library: the measurement and
the decision are in ``docs/decisions/0002-jws-implementation.md``. The key and algorithm names
are re-exported here, so ``jws.VerificationKey`` and ``jws.HS256`` keep working.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from medmesh.platform.tokens.jwa import (
    ES256,
    ES384,
    HS256,
    MIN_HMAC_SECRET_BYTES,
    MIN_RSA_BITS,
    P256_BYTES,
    P384_BYTES,
    PUBLIC_KEY_ALGORITHMS,
    RS256,
    RS384,
    SUPPORTED_ALGORITHMS,
    InvalidJWS,
    PrivateKey,
    PublicKey,
    UnknownKeyId,
    b64url_decode,
    b64url_encode,
)
from medmesh.platform.tokens.jwk import jwk_thumbprint, public_jwk_members
from medmesh.platform.tokens.keys import SigningKey, VerificationKey, keys_from_jwks

__all__ = [
    "ES256",
    "ES384",
    "HS256",
    "MIN_HMAC_SECRET_BYTES",
    "MIN_RSA_BITS",
    "P256_BYTES",
    "P384_BYTES",
    "PUBLIC_KEY_ALGORITHMS",
    "RS256",
    "RS384",
    "SUPPORTED_ALGORITHMS",
    "DecodedJWS",
    "InvalidJWS",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "UnknownKeyId",
    "VerificationKey",
    "b64url_decode",
    "b64url_encode",
    "decode_unverified",
    "jwk_thumbprint",
    "keys_from_jwks",
    "public_jwk_members",
    "verify_compact",
    "verify_decoded",
]

# Three base64url segments; the signature may be empty only so that the error says why.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_HEADER_CACHE: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True, slots=True)
class DecodedJWS:
    """A parsed but not yet verified compact JWS."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        alg = self.header.get("alg")
        return alg if isinstance(alg, str) else ""

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def _decode_json(segment: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(b64url_decode(segment))
    except orjson.JSONDecodeError as exc:
        raise InvalidJWS(f"token {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidJWS(f"token {what} is not a JSON object")
    return value


def decode_unverified(token: str) -> DecodedJWS:
    """Split and decode a compact JWS without checking its signature.

    Rejects anything that is not three base64url segments of a JSON-object
    header and payload, and headers carrying ``crit`` (no extension is understood).
    """
    if not isinstance(token, str) or len(token) > 16_384 or not _COMPACT.fullmatch(token):
        raise InvalidJWS("token is not a compact JWS")
    header_b64, payload_b64, signature_b64 = token.split(".")
    # Every token of one key has the same header: decoding it once saves a third of the parse.
    header = _HEADER_CACHE.get(header_b64)
    if header is None:
        header = _decode_json(header_b64, "header")
        if "crit" in header:
            raise InvalidJWS("token header has unsupported critical extensions")
        if len(_HEADER_CACHE) >= 64:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[header_b64] = header
    claims = _decode_json(payload_b64, "payload")
    signature = b64url_decode(signature_b64)
    signing_input = token[: len(header_b64) + 1 + len(payload_b64)].encode("ascii")
    return DecodedJWS(dict(header), claims, signing_input, signature)


def verify_decoded(
    decoded: DecodedJWS,
    key: VerificationKey,
    algorithms: Collection[str] = SUPPORTED_ALGORITHMS,
) -> None:
    """Check ``decoded``'s signature with ``key``; raises :class:`InvalidJWS`.

    The header's ``alg`` must be in ``algorithms`` and equal to the key's own
    algorithm, so an HS256 header can never be checked with an RSA key.
    """
    alg = decoded.alg
    if alg not in algorithms or alg not in SUPPORTED_ALGORITHMS:
        raise InvalidJWS("token algorithm is not allowed")
    if alg != key.alg:
        raise InvalidJWS("token algorithm does not match the key")
    if not decoded.signature or not key.verify(decoded.signing_input, decoded.signature):
        raise InvalidJWS("token signature does not verify")


def verify_compact(
    token: str,
    keys: VerificationKey | Mapping[str, VerificationKey],
    *,
    algorithms: Collection[str] = SUPPORTED_ALGORITHMS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS's signature and return ``(header, claims)``.

    ``keys`` is one key, or keys by ``kid`` (the header must then name one of
    them; an unknown one raises :class:`UnknownKeyId`). Claims are not checked.
    """
    decoded = decode_unverified(token)
    if isinstance(keys, VerificationKey):
        key = keys
    else:
        kid = decoded.kid
        if kid is None:
            raise InvalidJWS("token header has no kid")
        found = keys.get(kid)
        if found is None:
            raise UnknownKeyId("token is signed with an unknown key")
        key = found
    verify_decoded(decoded, key, algorithms)
    return decoded.header, decoded.claims
