import base64
import hashlib
import hmac
import time

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from medmesh.platform import jwt
from medmesh.platform.jwt import (
    InvalidJWS,
    SigningKey,
    UnknownKeyId,
    VerificationKey,
    keys_from_jwks,
    verify_compact,
)

SECRET = "s" * 40


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.generate_rsa()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims() -> dict[str, object]:
    return {"sub": "u1", "exp": int(time.time()) + 60, "scope": "openid"}


def test_rs256_round_trip_through_the_public_jwk(rsa_key: SigningKey) -> None:
    token = rsa_key.sign(_claims())
    keys = keys_from_jwks({"keys": [rsa_key.public_jwk()]})

    header, claims = verify_compact(token, keys)

    assert header == {"alg": "RS256", "typ": "JWT", "kid": rsa_key.kid}
    assert claims == _claims() | {"exp": claims["exp"]}


def test_default_kid_is_the_rfc7638_thumbprint(rsa_key: SigningKey) -> None:
    jwk = rsa_key.public_jwk()
    canonical = orjson.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]})
    assert rsa_key.kid == _b64(hashlib.sha256(canonical).digest())
    assert jwk["use"] == "sig"
    assert jwk["alg"] == "RS256"
    assert jwk["kty"] == "RSA"


def test_rfc7638_example_thumbprint() -> None:
    # The worked example of RFC 7638 section 3.1.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
        "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    assert jwt.rsa_thumbprint(n, "AQAB") == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_pem_round_trip_keeps_the_key(rsa_key: SigningKey) -> None:
    loaded = SigningKey.from_pem(rsa_key.private_pem())
    assert loaded.kid == rsa_key.kid
    token = loaded.sign(_claims())
    verify_compact(token, rsa_key.verification_key())


def test_explicit_kid_is_used() -> None:
    key = SigningKey.generate_rsa(kid="2024-01")
    assert key.public_jwk()["kid"] == "2024-01"
    assert verify_compact(key.sign({}), {"2024-01": key.verification_key()})[0]["kid"] == "2024-01"


def test_hs256_round_trip_and_no_public_form() -> None:
    key = SigningKey.hs256(SECRET)
    token = key.sign(_claims())
    header, _ = verify_compact(token, VerificationKey.hs256(SECRET))
    assert header == {"alg": "HS256", "typ": "JWT"}
    with pytest.raises(ValueError, match="no public JWK"):
        key.public_jwk()
    with pytest.raises(InvalidJWS, match="signature"):
        verify_compact(token, VerificationKey.hs256("t" * 40))


def test_short_hmac_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey.hs256("short")


def test_alg_none_is_refused(rsa_key: SigningKey) -> None:
    header = _b64(orjson.dumps({"alg": "none", "typ": "JWT", "kid": rsa_key.kid}))
    token = f"{header}.{_b64(orjson.dumps(_claims()))}."
    with pytest.raises(InvalidJWS):
        verify_compact(token, {rsa_key.kid or "": rsa_key.verification_key()})


def test_hs256_signed_with_the_rsa_public_key_is_refused(rsa_key: SigningKey) -> None:
    public_pem = rsa_key.verification_key().public_key.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}))
    signing_input = f"{header}.{_b64(orjson.dumps(_claims()))}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{_b64(signature)}"

    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(token, {rsa_key.kid or "": rsa_key.verification_key()})


def test_algorithm_allow_list_is_enforced() -> None:
    key = SigningKey.hs256(SECRET)
    with pytest.raises(InvalidJWS, match="not allowed"):
        verify_compact(key.sign({}), key.verification_key(), algorithms={"RS256"})


def test_unknown_and_missing_kid(rsa_key: SigningKey) -> None:
    other = SigningKey.generate_rsa(kid="other")
    with pytest.raises(UnknownKeyId):
        verify_compact(other.sign({}), {rsa_key.kid or "": rsa_key.verification_key()})
    with pytest.raises(InvalidJWS, match="no kid"):
        verify_compact(SigningKey.hs256(SECRET).sign({}), {"x": rsa_key.verification_key()})


def test_tampered_payload_is_refused(rsa_key: SigningKey) -> None:
    header, _, signature = rsa_key.sign({"sub": "alice"}).split(".")
    forged = f"{header}.{_b64(orjson.dumps({'sub': 'mallory'}))}.{signature}"
    with pytest.raises(InvalidJWS, match="signature"):
        verify_compact(forged, rsa_key.verification_key())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a+b.c.d",
        "e30.e30.a=",
        "\u00e9.e30.e30",
        "A.e30.e30",  # a one-character segment is not valid base64url
        f"{_b64(b'not json')}.e30.e30",
        f"{_b64(b'[1]')}.e30.e30",
        f"e30.{_b64(b'[]')}.e30",
        _b64(orjson.dumps({"alg": "RS256", "crit": ["x"]})) + ".e30.e30",
        "x" * 20_000 + ".e30.e30",
    ],
)
def test_malformed_tokens_are_refused(rsa_key: SigningKey, token: str) -> None:
    with pytest.raises(InvalidJWS):
        verify_compact(token, rsa_key.verification_key())


def test_jwks_skips_keys_it_cannot_use(rsa_key: SigningKey) -> None:
    jwks = {
        "keys": [
            rsa_key.public_jwk(),
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {**rsa_key.public_jwk(), "kid": "enc", "use": "enc"},
            {**rsa_key.public_jwk(), "kid": None},
        ]
    }
    assert list(keys_from_jwks(jwks)) == [rsa_key.kid]
    with pytest.raises(InvalidJWS):
        keys_from_jwks({"nokeys": []})


def test_small_rsa_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="2048"):
        SigningKey.generate_rsa(key_size=1024)
