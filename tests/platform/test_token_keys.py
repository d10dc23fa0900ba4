"""Key material (``tokens.keys``, ``tokens.jwk``): what a key or JWK that cannot serve its
algorithm is refused with, and keys that hold nothing to verify with."""

import re
from contextlib import AbstractContextManager
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from medmesh.platform.tokens import (
    InvalidJWS,
    SigningKey,
    VerificationKey,
    b64url_decode,
    jwk_thumbprint,
    keys_from_jwks,
)


def exactly(kind: type[Exception], message: str) -> AbstractContextManager[Any]:
    """``pytest.raises`` for ``kind`` whose message is ``message``, to the letter."""
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.generate("RS256", kid="rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.generate("ES256", kid="ec-1")


def test_a_public_key_gets_its_thumbprint_as_kid(ec_key: SigningKey) -> None:
    public = ec_key.verification_key().public_key
    assert public is not None

    key = VerificationKey.from_public_key(public)

    assert key.alg == "ES256"
    assert key.kid == jwk_thumbprint(ec_key.public_jwk())
    assert repr(key) == f"VerificationKey(alg='ES256', kid={key.kid!r})"


def test_a_public_key_serves_only_its_own_algorithms(
    rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    rsa_public, ec_public = (
        rsa_key.verification_key().public_key,
        ec_key.verification_key().public_key,
    )
    assert rsa_public is not None
    assert ec_public is not None
    other = ed25519.Ed25519PrivateKey.generate().public_key()

    with exactly(ValueError, "ES256 needs an EC P-256 key, not an RSA key"):
        VerificationKey.from_public_key(rsa_public, alg="ES256")
    with exactly(ValueError, "unsupported algorithm 'HS256'"):
        VerificationKey.from_public_key(ec_public, alg="HS256")
    with exactly(ValueError, "only RSA and EC (P-256, P-384) keys are supported"):
        VerificationKey.from_public_key(other)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        ({"kty": "OKP", "crv": "Ed25519", "x": "AA"}, "only RSA and EC JWKs are supported"),
        ({"kty": "RSA", "e": "AQAB"}, "RSA JWK lacks n or e"),
        ({"kty": "RSA", "n": "", "e": "AQAB"}, "JWK member is not a base64url string"),
        ({"kty": "EC", "crv": "P-256", "x": "AA"}, "EC JWK is not a P-256 key with x and y"),
    ],
    ids=["other type", "rsa without n", "empty member", "ec without y"],
)
def test_a_jwk_that_is_no_usable_key_is_refused(jwk: dict[str, Any], message: str) -> None:
    with exactly(InvalidJWS, message):
        VerificationKey.from_jwk(jwk)


def test_a_jwk_kid_must_be_a_string(ec_key: SigningKey) -> None:
    with exactly(InvalidJWS, "JWK kid is not a string"):
        VerificationKey.from_jwk({**ec_key.public_jwk(), "kid": 7})


def test_keys_keep_loading_once_the_parsed_key_cache_is_full() -> None:
    signers = [SigningKey.generate("ES256") for _ in range(300)]

    keys = keys_from_jwks({"keys": [s.public_jwk() for s in signers]})

    assert len(keys) == 300
    last = signers[-1]
    token = last.sign({"sub": "x"})
    head, payload, signature = token.split(".")
    assert last.kid is not None
    assert keys[last.kid].verify(f"{head}.{payload}".encode(), b64url_decode(signature))


@pytest.mark.parametrize(
    ("alg", "message"),
    [
        ("RS256", "RS256 needs an RSA 2048+ key"),
        ("ES384", "ES384 needs an EC P-384 key"),
        ("HS256", "HS256 needs a shared secret"),
        ("none", "unsupported algorithm 'none'"),
    ],
)
def test_a_signing_key_needs_the_material_of_its_algorithm(alg: str, message: str) -> None:
    with exactly(ValueError, message):
        SigningKey(alg, "k")


def test_a_pem_of_another_key_type_is_refused() -> None:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    with exactly(ValueError, "the PEM does not hold an RSA or EC private key"):
        SigningKey.from_pem(pem)


def test_a_shared_secret_has_no_pem_and_says_what_it_is() -> None:
    key = SigningKey.hs256(b"s" * 32, kid="shared")

    with exactly(ValueError, "an HS256 secret has no PEM form"):
        key.private_pem()
    assert repr(key) == "SigningKey(alg='HS256', kid='shared')"


def test_a_key_whose_material_does_not_fit_its_algorithm_verifies_nothing(
    rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    token = rsa_key.sign({"sub": "x"})
    head, payload, signature = token.split(".")
    signing_input, raw = f"{head}.{payload}".encode(), b64url_decode(signature)
    rsa_public = rsa_key.verification_key().public_key

    assert rsa_key.verification_key().verify(signing_input, raw)
    assert not VerificationKey("ES256", "k", public_key=rsa_public).verify(signing_input, raw)
    assert not VerificationKey("RS256", "k").verify(signing_input, raw)
