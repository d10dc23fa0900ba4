"""The signature algorithms (RFC 7518 §3) medmesh's tokens use: their names, the curves and
hashes behind them, signing and checking bytes with a key, and the encoding and error every token
module shares.

Five algorithms exist: RS256 and RS384 (RSA 2048+, PKCS#1 v1.5 with SHA-256 or SHA-384), ES256
and ES384 (ECDSA on P-256 with SHA-256 or on P-384 with SHA-384; the signature is R || S, 64 or
96 bytes) and HS256 (a shared secret of at least 32 bytes). :func:`algorithm_for` binds a key to
exactly one of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
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

PKCS1: Final = padding.PKCS1v15()
#: The hash of each RSA algorithm.
RSA_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    RS256: hashes.SHA256(),
    RS384: hashes.SHA384(),
}


@dataclass(frozen=True, slots=True)
class Curve:
    """An ECDSA algorithm's curve: its JWK name, coordinate size and signature scheme."""

    name: str
    curve: type[ec.EllipticCurve]
    size: int
    ecdsa: ec.ECDSA


EC_CURVES: Final = {
    ES256: Curve("P-256", ec.SECP256R1, P256_BYTES, ec.ECDSA(hashes.SHA256())),
    ES384: Curve("P-384", ec.SECP384R1, P384_BYTES, ec.ECDSA(hashes.SHA384())),
}
#: The algorithm of each curve, by its JWK ``crv`` name.
EC_ALGORITHM_OF_CURVE: Final = {c.name: alg for alg, c in EC_CURVES.items()}
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


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
    if len(segment) % 4 == 1 or not _BASE64URL.fullmatch(segment):
        raise InvalidJWS("malformed base64url segment")
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def curve_of(key: ec.EllipticCurvePublicKey) -> Curve:
    """The supported curve ``key`` lies on; ``ValueError`` for any other."""
    for curve in EC_CURVES.values():
        if isinstance(key.curve, curve.curve):
            return curve
    raise ValueError("only P-256 (ES256) and P-384 (ES384) EC keys are supported")


def algorithm_for(key: PublicKey, alg: str | None = None) -> str:
    """The algorithm ``key`` is bound to: ``alg`` when the key can serve it, else refused.

    RSA keys need 2048+ bits and serve RS256 (the default) or RS384; an EC key serves
    its curve's algorithm only (P-256: ES256, P-384: ES384).
    """
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        if alg is None:
            return RS256
        if alg in RSA_HASHES:
            return alg
        raise ValueError(f"{alg} needs {key_wanted(alg)}, not an RSA key")
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve_alg = EC_ALGORITHM_OF_CURVE[curve_of(key).name]
        if alg is None or alg == curve_alg:
            return curve_alg
        raise ValueError(f"{alg} needs {key_wanted(alg)}, not a {key.curve.name} key")
    raise ValueError("only RSA and EC (P-256, P-384) keys are supported")


def key_wanted(alg: str) -> str:
    """What kind of key ``alg`` needs, for error messages."""
    if alg in RSA_HASHES:
        return f"an RSA {MIN_RSA_BITS}+ key"
    if alg in EC_CURVES:
        return f"an EC {EC_CURVES[alg].name} key"
    raise ValueError(f"unsupported algorithm {alg!r}")


def check_secret(secret: bytes | str) -> bytes:
    """An HS256 secret as bytes; ``ValueError`` when shorter than 32 bytes."""
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_HMAC_SECRET_BYTES:
        raise ValueError(f"HS256 secrets must be at least {MIN_HMAC_SECRET_BYTES} bytes")
    return raw


def sign_input(
    alg: str, signing_input: bytes, *, private_key: PrivateKey | None, secret: bytes | None
) -> bytes:
    """The ``alg`` signature of ``signing_input``: PKCS#1 v1.5, ECDSA as R || S, or HMAC."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(signing_input, PKCS1, RSA_HASHES[alg])
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        curve = EC_CURVES[alg]
        r, s = decode_dss_signature(private_key.sign(signing_input, curve.ecdsa))
        return r.to_bytes(curve.size, "big") + s.to_bytes(curve.size, "big")
    assert secret is not None
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def signature_verifies(
    alg: str,
    signing_input: bytes,
    signature: bytes,
    *,
    public_key: PublicKey | None,
    secret: bytes | None,
) -> bool:
    """True when ``signature`` is the ``alg`` signature of ``signing_input`` by this key.

    The key must be one ``alg`` can use: an RSA key never checks an ECDSA signature, a P-256 key
    never an ES384 one, and only a secret checks HS256.
    """
    if alg == HS256 and secret is not None:
        expected = hmac.new(secret, signing_input, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            digest = RSA_HASHES.get(alg)
            if digest is None:
                return False
            public_key.verify(signature, signing_input, PKCS1, digest)
            return True
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            curve = EC_CURVES.get(alg)
            # The key's curve must be the algorithm's: a P-256 key never checks ES384.
            if curve is None or not isinstance(public_key.curve, curve.curve):
                return False
            if len(signature) != 2 * curve.size:
                return False
            r = int.from_bytes(signature[: curve.size], "big")
            s = int.from_bytes(signature[curve.size :], "big")
            public_key.verify(encode_dss_signature(r, s), signing_input, curve.ecdsa)
            return True
    except InvalidSignature:
        return False
    return False
