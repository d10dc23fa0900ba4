"""Public keys as JSON Web Keys (RFC 7517): export (:func:`public_jwk_members`), RFC 7638
thumbprints, and import (:func:`jwk_algorithm`, :func:`load_public_jwk`) that binds each JWK to
one algorithm and refuses a key that does not fit it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from medmesh.platform.tokens.jwa import (
    EC_ALGORITHM_OF_CURVE,
    EC_CURVES,
    RS256,
    RSA_HASHES,
    InvalidJWS,
    PublicKey,
    algorithm_for,
    b64url_decode,
    b64url_encode,
    curve_of,
)

_PUBLIC_KEY_CACHE: dict[tuple[str, ...], PublicKey] = {}
_PUBLIC_KEY_CACHE_SIZE: Final = 256
# RFC 7638 §3.2: the required members of each key type, the only ones a thumbprint covers.
_THUMBPRINT_MEMBERS: Final = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def _int_to_b64(value: int, length: int = 0) -> str:
    """Big-endian base64url of ``value``: minimal bytes, or exactly ``length`` (EC coordinates)."""
    size = length or (value.bit_length() + 7) // 8
    return b64url_encode(value.to_bytes(size, "big")).decode()


def _b64_to_int(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise InvalidJWS("JWK member is not a base64url string")
    return int.from_bytes(b64url_decode(value), "big")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA or EC public JWK."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = orjson.dumps({name: jwk[name] for name in members}, option=orjson.OPT_SORT_KEYS)
    return b64url_encode(hashlib.sha256(canonical).digest()).decode()


def public_jwk_members(key: PublicKey) -> dict[str, str]:
    """The key-type members of a public key's JWK: ``kty, n, e`` or ``kty, crv, x, y``."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _int_to_b64(numbers.n), "e": _int_to_b64(numbers.e)}
    curve = curve_of(key)
    point = key.public_numbers()
    return {
        "kty": "EC",
        "crv": curve.name,
        "x": _int_to_b64(point.x, curve.size),
        "y": _int_to_b64(point.y, curve.size),
    }


def jwk_algorithm(jwk: Mapping[str, Any]) -> str:
    """The algorithm a public JWK is bound to: its ``alg``, checked against its key type and
    curve; without ``alg``, RS256 for RSA and the curve's algorithm for EC."""
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if kty == "RSA":
        if alg is None or alg in RSA_HASHES:
            return alg or RS256
        raise InvalidJWS("JWK alg does not match its RSA key")
    if kty == "EC":
        crv = jwk.get("crv")
        curve_alg = EC_ALGORITHM_OF_CURVE.get(crv) if isinstance(crv, str) else None
        if curve_alg is None:
            raise InvalidJWS("EC JWK is not a P-256 or P-384 key")
        if alg is None or alg == curve_alg:
            return curve_alg
        if alg in EC_CURVES:
            raise InvalidJWS(f"JWK alg {alg} needs a {EC_CURVES[alg].name} key, not {crv}")
        raise InvalidJWS("JWK alg does not match its EC key")
    raise InvalidJWS("only RSA and EC JWKs are supported")


def load_public_jwk(jwk: Mapping[str, Any], alg: str) -> PublicKey:
    """The public key of an RSA or EC JWK for ``alg``, validated (an EC point must lie on the
    curve, its coordinates must have the curve's size); loaded keys are cached."""
    if alg in RSA_HASHES:
        n, e = jwk.get("n"), jwk.get("e")
        if not isinstance(n, str) or not isinstance(e, str):
            raise InvalidJWS("RSA JWK lacks n or e")
        cache_key: tuple[str, ...] = ("RSA", n, e)
    else:
        x, y = jwk.get("x"), jwk.get("y")
        if not isinstance(x, str) or not isinstance(y, str):
            raise InvalidJWS(f"EC JWK is not a {EC_CURVES[alg].name} key with x and y")
        cache_key = ("EC", EC_CURVES[alg].name, x, y)
    key = _PUBLIC_KEY_CACHE.get(cache_key)
    if key is not None:
        return key
    try:
        if alg in RSA_HASHES:
            numbers = rsa.RSAPublicNumbers(_b64_to_int(cache_key[2]), _b64_to_int(cache_key[1]))
            key = numbers.public_key()
        else:
            curve = EC_CURVES[alg]
            x_raw, y_raw = b64url_decode(cache_key[2]), b64url_decode(cache_key[3])
            if len(x_raw) != curve.size or len(y_raw) != curve.size:
                raise InvalidJWS(f"EC JWK coordinates are not {curve.size} bytes")
            point = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x_raw, "big"), int.from_bytes(y_raw, "big"), curve.curve()
            )
            key = point.public_key()  # refuses a point that is not on the curve
        algorithm_for(key, alg)
    except ValueError as exc:
        raise InvalidJWS(f"{jwk.get('kty')} JWK is not a valid public key: {exc}") from exc
    if len(_PUBLIC_KEY_CACHE) >= _PUBLIC_KEY_CACHE_SIZE:
        _PUBLIC_KEY_CACHE.clear()
    _PUBLIC_KEY_CACHE[cache_key] = key
    return key
