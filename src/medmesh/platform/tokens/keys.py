"""Key material for tokens: :class:`SigningKey` (generated, loaded from PEM or a shared secret,
exported as PEM and public JWK) and :class:`VerificationKey` (from a public key, a JWK or a
secret), each bound to exactly one algorithm, and :func:`keys_from_jwks`, a key ring read from a
JWK Set.

An RSA or EC key never verifies an HMAC, an EC key never an RSA signature, a P-256 key never an
ES384 one: a key checks signatures of its own algorithm only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from medmesh.platform.tokens.jwa import (
    EC_CURVES,
    ES256,
    HS256,
    PUBLIC_KEY_ALGORITHMS,
    RS256,
    RSA_HASHES,
    InvalidJWS,
    PrivateKey,
    PublicKey,
    algorithm_for,
    b64url_encode,
    check_secret,
    key_wanted,
    sign_input,
    signature_verifies,
)
from medmesh.platform.tokens.jwk import (
    jwk_algorithm,
    jwk_thumbprint,
    load_public_jwk,
    public_jwk_members,
)


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
        return cls(HS256, kid, secret=check_secret(secret))

    @classmethod
    def from_public_key(
        cls, key: PublicKey, kid: str | None = None, *, alg: str | None = None
    ) -> VerificationKey:
        """A key for ``alg`` from a loaded public key; ``alg`` defaults to RS256 for RSA and
        to the curve's algorithm for EC, ``kid`` to the key's thumbprint."""
        alg = algorithm_for(key, alg)
        if kid is None:
            kid = jwk_thumbprint(public_jwk_members(key))
        return cls(alg, kid, public_key=key)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerificationKey:
        """A key from a public JWK, bound to its ``alg`` (RS256 for an RSA JWK that names
        none, the curve's algorithm for EC); loaded key objects are cached."""
        if jwk.get("use", "sig") != "sig":
            raise InvalidJWS("JWK is not a signing key")
        alg = jwk_algorithm(jwk)
        key = load_public_jwk(jwk, alg)
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidJWS("JWK kid is not a string")
        return cls(alg, kid if kid is not None else jwk_thumbprint(jwk), public_key=key)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``signing_input``."""
        return signature_verifies(
            self.alg, signing_input, signature, public_key=self.public_key, secret=self.secret
        )

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
                raise ValueError(f"{alg} needs {key_wanted(alg)}")
            algorithm_for(private_key.public_key(), alg)
        elif alg == HS256:
            if secret is None:
                raise ValueError("HS256 needs a shared secret")
            secret = check_secret(secret)
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
        if alg in RSA_HASHES:
            return cls.generate_rsa(kid, alg=alg)
        if alg in EC_CURVES:
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
        if alg not in EC_CURVES:
            raise ValueError(f"{alg!r} is not an ECDSA algorithm")
        return cls(alg, kid, private_key=ec.generate_private_key(EC_CURVES[alg].curve()))

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
        return cls(algorithm_for(key.public_key(), alg), kid, private_key=key)

    @classmethod
    def hs256(cls, secret: bytes | str, kid: str | None = None) -> SigningKey:
        """An HS256 key from a shared secret of at least 32 bytes."""
        raw = secret.encode() if isinstance(secret, str) else secret
        return cls(HS256, kid, secret=raw)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS of ``claims`` with header ``{alg, typ: "JWT", kid}``."""
        signing_input = self._header_b64 + b"." + b64url_encode(orjson.dumps(claims))
        signature = sign_input(
            self.alg, signing_input, private_key=self._private_key, secret=self._secret
        )
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
