"""Compact JWS (RFC 7515) signing and verification for access tokens.

Five algorithms exist here (RFC 7518 §3): RS256 and RS384 (RSA 2048+, PKCS#1 v1.5
with SHA-256 or SHA-384), ES256 and ES384 (ECDSA on P-256 with SHA-256 or on P-384
with SHA-384; the signature is R || S, 64 or 96 bytes) and HS256 (a shared secret
of at least 32 bytes). Every key is bound to exactly one algorithm: an EC key to
its curve's, an RSA key to the one it was made or published for (RS256 when a JWK
names none). A token is verified against an explicit allow-list of algorithms
*and* against its key's algorithm, so ``alg: none``, the "HS256 signed with the
public key" forgery and a token relabelled to another algorithm or curve fail by
construction: an RSA or EC key never verifies an HMAC, an EC key never an RSA
signature, a P-256 key never an ES384 one.

This module checks signatures only; the claims (``exp``, ``iss``, ``aud``...)
are checked by :mod:`medmesh.platform.tokens.verifier`. It is built on
``cryptography`` and ``orjson`` rather than a JOSE library: the measurement and
the decision are in ``docs/decisions/0002-jws-implementation.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from medmesh.platform.errors import MedmeshError

RS256: Final = "RS256"
RS384: Final = "RS384"
ES256: Final = "ES256"
ES384: Final = "ES384"
HS256: Final = "HS256"
SUPPORTED_ALGORITHMS: Final = frozenset({RS256, RS384, ES256, ES384, HS256})
#: The algorithms of public keys (a JWK Set publishes these; HS256 is a shared secret).
PUBLIC_KEY_ALGORITHMS: Final = frozenset({RS256, RS384, ES256, ES384})
MIN_RSA_BITS: Final = 2048
MIN_HMAC_SECRET_BYTES: Final = 32
P256_BYTES: Final = 32
P384_BYTES: Final = 48

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
#: The hash of each RSA algorithm.
_RSA_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {RS256: _SHA256, RS384: hashes.SHA384()}


@dataclass(frozen=True, slots=True)
class _Curve:
    """An ECDSA algorithm's curve: its JWK name, coordinate size and signature scheme."""

    name: str
    curve: type[ec.EllipticCurve]
    size: int
    ecdsa: ec.ECDSA


_EC_CURVES: Final = {
    ES256: _Curve("P-256", ec.SECP256R1, P256_BYTES, ec.ECDSA(hashes.SHA256())),
    ES384: _Curve("P-384", ec.SECP384R1, P384_BYTES, ec.ECDSA(hashes.SHA384())),
}
#: The algorithm of each curve, by its JWK ``crv`` name.
_EC_ALGORITHM_OF_CURVE: Final = {c.name: alg for alg, c in _EC_CURVES.items()}
# Three base64url segments; the signature may be empty only so that the error says why.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_COMPACT_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*")
_PUBLIC_KEY_CACHE: dict[tuple[str, ...], PublicKey] = {}
_PUBLIC_KEY_CACHE_SIZE: Final = 256


class InvalidJWS(MedmeshError):
    """A token that is malformed or whose signature does not verify."""

    status, code = 401, "invalid_token"


class UnknownKeyId(InvalidJWS):
    """The token names a ``kid`` that is not among the verification keys."""


def b64url_encode(data: bytes) -> bytes:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64url_decode(segment: str | bytes) -> bytes:
    """Decode unpadded base64url; raises :class:`InvalidJWS` on bad input."""
    if isinstance(segment, str):
        segment = segment.encode("ascii", "replace")
    if len(segment) % 4 == 1 or not _COMPACT_SEGMENT.fullmatch(segment):
        raise InvalidJWS("malformed base64url segment")
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def _int_to_b64(value: int, length: int = 0) -> str:
    """Big-endian base64url of ``value``: minimal bytes, or exactly ``length`` (EC coordinates)."""
    size = length or (value.bit_length() + 7) // 8
    return b64url_encode(value.to_bytes(size, "big")).decode()


def _b64_to_int(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise InvalidJWS("JWK member is not a base64url string")
    return int.from_bytes(b64url_decode(value), "big")


# RFC 7638 §3.2: the required members of each key type, the only ones a thumbprint covers.
_THUMBPRINT_MEMBERS: Final = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA or EC public JWK."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = orjson.dumps({name: jwk[name] for name in members}, option=orjson.OPT_SORT_KEYS)
    return b64url_encode(hashlib.sha256(canonical).digest()).decode()


def _curve_of(key: ec.EllipticCurvePublicKey) -> _Curve:
    for curve in _EC_CURVES.values():
        if isinstance(key.curve, curve.curve):
            return curve
    raise ValueError("only P-256 (ES256) and P-384 (ES384) EC keys are supported")


def public_jwk_members(key: PublicKey) -> dict[str, str]:
    """The key-type members of a public key's JWK: ``kty, n, e`` or ``kty, crv, x, y``."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _int_to_b64(numbers.n), "e": _int_to_b64(numbers.e)}
    curve = _curve_of(key)
    point = key.public_numbers()
    return {
        "kty": "EC",
        "crv": curve.name,
        "x": _int_to_b64(point.x, curve.size),
        "y": _int_to_b64(point.y, curve.size),
    }


def _algorithm_for(key: PublicKey, alg: str | None = None) -> str:
    """The algorithm ``key`` is bound to: ``alg`` when the key can serve it, else refused.

    RSA keys need 2048+ bits and serve RS256 (the default) or RS384; an EC key serves
    its curve's algorithm only (P-256: ES256, P-384: ES384).
    """
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        if alg is None:
            return RS256
        if alg in _RSA_HASHES:
            return alg
        raise ValueError(f"{alg} needs {_key_wanted(alg)}, not an RSA key")
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve_alg = _EC_ALGORITHM_OF_CURVE[_curve_of(key).name]
        if alg is None or alg == curve_alg:
            return curve_alg
        raise ValueError(f"{alg} needs {_key_wanted(alg)}, not a {key.curve.name} key")
    raise ValueError("only RSA and EC (P-256, P-384) keys are supported")


def _key_wanted(alg: str) -> str:
    if alg in _RSA_HASHES:
        return f"an RSA {MIN_RSA_BITS}+ key"
    if alg in _EC_CURVES:
        return f"an EC {_EC_CURVES[alg].name} key"
    raise ValueError(f"unsupported algorithm {alg!r}")


def _jwk_algorithm(jwk: Mapping[str, Any]) -> str:
    """The algorithm a public JWK is bound to: its ``alg``, checked against its key type and
    curve; without ``alg``, RS256 for RSA and the curve's algorithm for EC."""
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if kty == "RSA":
        if alg is None or alg in _RSA_HASHES:
            return alg or RS256
        raise InvalidJWS("JWK alg does not match its RSA key")
    if kty == "EC":
        crv = jwk.get("crv")
        curve_alg = _EC_ALGORITHM_OF_CURVE.get(crv) if isinstance(crv, str) else None
        if curve_alg is None:
            raise InvalidJWS("EC JWK is not a P-256 or P-384 key")
        if alg is None or alg == curve_alg:
            return curve_alg
        if alg in _EC_CURVES:
            raise InvalidJWS(f"JWK alg {alg} needs a {_EC_CURVES[alg].name} key, not {crv}")
        raise InvalidJWS("JWK alg does not match its EC key")
    raise InvalidJWS("only RSA and EC JWKs are supported")


def _load_public_jwk(jwk: Mapping[str, Any], alg: str) -> PublicKey:
    """The public key of an RSA or EC JWK for ``alg``, validated (an EC point must lie on the
    curve, its coordinates must have the curve's size)."""
    if alg in _RSA_HASHES:
        n, e = jwk.get("n"), jwk.get("e")
        if not isinstance(n, str) or not isinstance(e, str):
            raise InvalidJWS("RSA JWK lacks n or e")
        cache_key: tuple[str, ...] = ("RSA", n, e)
    else:
        x, y = jwk.get("x"), jwk.get("y")
        if not isinstance(x, str) or not isinstance(y, str):
            raise InvalidJWS(f"EC JWK is not a {_EC_CURVES[alg].name} key with x and y")
        cache_key = ("EC", _EC_CURVES[alg].name, x, y)
    key = _PUBLIC_KEY_CACHE.get(cache_key)
    if key is not None:
        return key
    try:
        if alg in _RSA_HASHES:
            numbers = rsa.RSAPublicNumbers(_b64_to_int(cache_key[2]), _b64_to_int(cache_key[1]))
            key = numbers.public_key()
        else:
            curve = _EC_CURVES[alg]
            x_raw, y_raw = b64url_decode(cache_key[2]), b64url_decode(cache_key[3])
            if len(x_raw) != curve.size or len(y_raw) != curve.size:
                raise InvalidJWS(f"EC JWK coordinates are not {curve.size} bytes")
            point = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x_raw, "big"), int.from_bytes(y_raw, "big"), curve.curve()
            )
            key = point.public_key()  # refuses a point that is not on the curve
        _algorithm_for(key, alg)
    except ValueError as exc:
        raise InvalidJWS(f"{jwk.get('kty')} JWK is not a valid public key: {exc}") from exc
    if len(_PUBLIC_KEY_CACHE) >= _PUBLIC_KEY_CACHE_SIZE:
        _PUBLIC_KEY_CACHE.clear()
    _PUBLIC_KEY_CACHE[cache_key] = key
    return key


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """A loaded key bound to exactly one algorithm; it verifies nothing else."""

    alg: str
    kid: str | None
    public_key: PublicKey | None = None
    secret: bytes | None = None

    @classmethod
    def hs256(cls, secret: bytes | str, kid: str | None = None) -> VerificationKey:
        """An HS256 key from a shared secret (at least 32 bytes)."""
        return cls(HS256, kid, secret=_check_secret(secret))

    @classmethod
    def from_public_key(
        cls, key: PublicKey, kid: str | None = None, *, alg: str | None = None
    ) -> VerificationKey:
        """A key for ``alg`` from a loaded public key; ``alg`` defaults to RS256 for RSA and
        to the curve's algorithm for EC, ``kid`` to the key's thumbprint."""
        alg = _algorithm_for(key, alg)
        if kid is None:
            kid = jwk_thumbprint(public_jwk_members(key))
        return cls(alg, kid, public_key=key)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerificationKey:
        """A key from a public JWK, bound to its ``alg`` (RS256 for an RSA JWK that names
        none, the curve's algorithm for EC); loaded key objects are cached."""
        if jwk.get("use", "sig") != "sig":
            raise InvalidJWS("JWK is not a signing key")
        alg = _jwk_algorithm(jwk)
        key = _load_public_jwk(jwk, alg)
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidJWS("JWK kid is not a string")
        return cls(alg, kid if kid is not None else jwk_thumbprint(jwk), public_key=key)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``signing_input``."""
        if self.alg == HS256 and self.secret is not None:
            expected = hmac.new(self.secret, signing_input, hashlib.sha256).digest()
            return hmac.compare_digest(expected, signature)
        key = self.public_key
        try:
            if isinstance(key, rsa.RSAPublicKey):
                digest = _RSA_HASHES.get(self.alg)
                if digest is None:
                    return False
                key.verify(signature, signing_input, _PKCS1, digest)
                return True
            if isinstance(key, ec.EllipticCurvePublicKey):
                curve = _EC_CURVES.get(self.alg)
                # The key's curve must be the algorithm's: a P-256 key never checks ES384.
                if curve is None or not isinstance(key.curve, curve.curve):
                    return False
                if len(signature) != 2 * curve.size:
                    return False
                r = int.from_bytes(signature[: curve.size], "big")
                s = int.from_bytes(signature[curve.size :], "big")
                key.verify(encode_dss_signature(r, s), signing_input, curve.ecdsa)
                return True
        except InvalidSignature:
            return False
        return False

    def __repr__(self) -> str:
        return f"VerificationKey(alg={self.alg!r}, kid={self.kid!r})"


def keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """The signing keys of a JWK Set by kid (RS256, RS384, ES256, ES384); other keys (enc, no
    kid, other types or curves, an ``alg`` that does not match the key) are skipped."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise InvalidJWS("JWK Set has no keys array")
    loaded: dict[str, VerificationKey] = {}
    for jwk in keys:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        try:
            key = VerificationKey.from_jwk(jwk)
        except InvalidJWS:
            continue
        if key.kid is not None:
            loaded[key.kid] = key
    return loaded


def _check_secret(secret: bytes | str) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_HMAC_SECRET_BYTES:
        raise ValueError(f"HS256 secrets must be at least {MIN_HMAC_SECRET_BYTES} bytes")
    return raw


class SigningKey:
    """A private signing key (RS256, RS384, ES256, ES384) or shared secret (HS256) that issues
    compact JWS."""

    __slots__ = ("_header_b64", "_private_key", "_secret", "alg", "kid")

    def __init__(
        self,
        alg: str,
        kid: str | None,
        *,
        private_key: PrivateKey | None = None,
        secret: bytes | None = None,
    ) -> None:
        if alg in PUBLIC_KEY_ALGORITHMS:
            if private_key is None:
                raise ValueError(f"{alg} needs {_key_wanted(alg)}")
            _algorithm_for(private_key.public_key(), alg)
        elif alg == HS256:
            if secret is None:
                raise ValueError("HS256 needs a shared secret")
            secret = _check_secret(secret)
        else:
            raise ValueError(f"unsupported algorithm {alg!r}")
        self.alg = alg
        self._private_key = private_key
        self._secret = secret
        if kid is None and private_key is not None:
            kid = jwk_thumbprint(public_jwk_members(private_key.public_key()))
        self.kid = kid
        header: dict[str, str] = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        # The header never changes for a key, so it is encoded once.
        self._header_b64 = b64url_encode(orjson.dumps(header))

    @classmethod
    def generate(cls, alg: str, kid: str | None = None) -> SigningKey:
        """A new key pair for ``alg`` (RS256, RS384, ES256 or ES384); ``kid`` defaults to the
        thumbprint."""
        if alg == RS256:
            return cls.generate_rsa(kid)
        if alg in _RSA_HASHES:
            return cls.generate_rsa(kid, alg=alg)
        if alg in _EC_CURVES:
            return cls.generate_ec(kid, alg=alg)
        raise ValueError(f"cannot generate a key pair for {alg!r}")

    @classmethod
    def generate_rsa(
        cls, kid: str | None = None, *, key_size: int = 2048, alg: str = RS256
    ) -> SigningKey:
        """A new RSA key for ``alg`` (RS256 or RS384); ``kid`` defaults to the RFC 7638
        thumbprint."""
        return cls(alg, kid, private_key=rsa.generate_private_key(65537, key_size))

    @classmethod
    def generate_ec(cls, kid: str | None = None, *, alg: str = ES256) -> SigningKey:
        """A new EC key for ``alg`` (ES256 on P-256, ES384 on P-384); ``kid`` defaults to the
        RFC 7638 thumbprint."""
        if alg not in _EC_CURVES:
            raise ValueError(f"{alg!r} is not an ECDSA algorithm")
        return cls(alg, kid, private_key=ec.generate_private_key(_EC_CURVES[alg].curve()))

    @classmethod
    def from_pem(
        cls,
        pem: bytes,
        kid: str | None = None,
        *,
        password: bytes | None = None,
        alg: str | None = None,
    ) -> SigningKey:
        """A key from a PEM private key (as written by :meth:`private_pem`), for ``alg``:
        by default RS256 for RSA and the curve's algorithm for EC."""
        key = serialization.load_pem_private_key(pem, password=password)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the PEM does not hold an RSA or EC private key")
        return cls(_algorithm_for(key.public_key(), alg), kid, private_key=key)

    @classmethod
    def hs256(cls, secret: bytes | str, kid: str | None = None) -> SigningKey:
        """An HS256 key from a shared secret of at least 32 bytes."""
        raw = secret.encode() if isinstance(secret, str) else secret
        return cls(HS256, kid, secret=raw)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS of ``claims`` with header ``{alg, typ: "JWT", kid}``."""
        signing_input = self._header_b64 + b"." + b64url_encode(orjson.dumps(claims))
        key = self._private_key
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(signing_input, _PKCS1, _RSA_HASHES[self.alg])
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            curve = _EC_CURVES[self.alg]
            r, s = decode_dss_signature(key.sign(signing_input, curve.ecdsa))
            signature = r.to_bytes(curve.size, "big") + s.to_bytes(curve.size, "big")
        else:
            assert self._secret is not None
            signature = hmac.new(self._secret, signing_input, hashlib.sha256).digest()
        return (signing_input + b"." + b64url_encode(signature)).decode("ascii")

    def public_jwk(self) -> dict[str, str]:
        """The public JWK (kty, kid, use, alg and n, e or crv, x, y). HS256 secrets have none."""
        if self._private_key is None:
            raise ValueError("an HS256 secret has no public JWK")
        members = public_jwk_members(self._private_key.public_key())
        return {
            "kty": members["kty"],
            "kid": self.kid or "",
            "use": "sig",
            "alg": self.alg,
            **members,
        }

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, for storage (encrypt it at rest)."""
        if self._private_key is None:
            raise ValueError("an HS256 secret has no PEM form")
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def verification_key(self) -> VerificationKey:
        """The key that verifies this key's signatures."""
        if self._private_key is not None:
            return VerificationKey(self.alg, self.kid, public_key=self._private_key.public_key())
        assert self._secret is not None
        return VerificationKey(HS256, self.kid, secret=self._secret)

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"


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


_HEADER_CACHE: dict[str, dict[str, Any]] = {}


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
