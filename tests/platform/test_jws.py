import base64
import hashlib
import hmac
import time

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medmesh.platform.tokens import (
    InvalidJWS,
    SigningKey,
    UnknownKeyId,
    VerificationKey,
    jws,
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
    assert (
        jws.jwk_thumbprint({"kty": "RSA", "n": n, "e": "AQAB"})
        == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )


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


# --- ES256 (ECDSA P-256, RFC 7518 §3.4) ---------------------------------------------------------


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.generate_ec()


def test_es256_round_trip_through_the_public_jwk(ec_key: SigningKey) -> None:
    token = ec_key.sign(_claims())
    jwk = ec_key.public_jwk()

    header, claims = verify_compact(token, keys_from_jwks({"keys": [jwk]}))

    assert header == {"alg": "ES256", "typ": "JWT", "kid": ec_key.kid}
    assert claims["sub"] == "u1"
    assert set(jwk) == {"kty", "kid", "use", "alg", "crv", "x", "y"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    # Coordinates are the full 32 bytes even when they have leading zeros (RFC 7518 §6.2.1.2).
    assert len(jwk["x"]) == len(jwk["y"]) == 43
    # The signature is R || S (64 bytes), not DER.
    assert len(jws.b64url_decode(token.split(".")[2])) == 64


def test_es256_kid_is_the_rfc7638_thumbprint(ec_key: SigningKey) -> None:
    jwk = ec_key.public_jwk()
    canonical = orjson.dumps({"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]})
    assert ec_key.kid == _b64(hashlib.sha256(canonical).digest())


def test_es256_pem_round_trip_keeps_the_key(ec_key: SigningKey) -> None:
    again = SigningKey.from_pem(ec_key.private_pem())
    assert again.alg == "ES256"
    assert again.kid == ec_key.kid
    assert verify_compact(again.sign(_claims()), ec_key.verification_key())[1]["sub"] == "u1"


def test_es256_interoperates_with_pyjwt(ec_key: SigningKey) -> None:
    import jwt as pyjwt

    public = pyjwt.PyJWK.from_dict(ec_key.public_jwk()).key
    assert pyjwt.decode(ec_key.sign(_claims()), public, algorithms=["ES256"])["sub"] == "u1"

    private = serialization.load_pem_private_key(ec_key.private_pem(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    theirs = pyjwt.encode(_claims(), private, algorithm="ES256", headers={"kid": ec_key.kid})
    assert verify_compact(theirs, keys_from_jwks({"keys": [ec_key.public_jwk()]}))[1]["sub"] == "u1"


def test_es256_tampered_payload_and_signature_are_refused(ec_key: SigningKey) -> None:
    head, payload, signature = ec_key.sign(_claims()).split(".")
    forged_payload = _b64(orjson.dumps({**_claims(), "sub": "admin"}))
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(f"{head}.{forged_payload}.{signature}", ec_key.verification_key())
    raw = bytearray(jws.b64url_decode(signature))
    raw[10] ^= 1
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(f"{head}.{payload}.{_b64(bytes(raw))}", ec_key.verification_key())


def test_es256_psychic_signature_is_refused(ec_key: SigningKey) -> None:
    # CVE-2022-21449: r = s = 0 "verified" every message in some ECDSA implementations.
    head, payload, _ = ec_key.sign(_claims()).split(".")
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(f"{head}.{payload}.{_b64(bytes(64))}", ec_key.verification_key())


def test_es256_der_signature_is_refused(ec_key: SigningKey) -> None:
    # A DER-encoded ECDSA signature is a valid signature of the input but not a valid JWS.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    token = ec_key.sign(_claims())
    head, payload, _ = token.split(".")
    private = serialization.load_pem_private_key(ec_key.private_pem(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    der = private.sign(f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(f"{head}.{payload}.{_b64(der)}", ec_key.verification_key())


def test_algorithms_and_key_types_never_cross(ec_key: SigningKey, rsa_key: SigningKey) -> None:
    ec_token, rsa_token = ec_key.sign(_claims()), rsa_key.sign(_claims())
    # An ES256 token checked with an RSA key, and an RS256 token with an EC key.
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(ec_token, rsa_key.verification_key())
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(rsa_token, ec_key.verification_key())
    # A header that says RS256 over an ES256 signature, under the EC key's kid.
    _, payload, signature = ec_token.split(".")
    relabelled = _b64(orjson.dumps({"alg": "RS256", "typ": "JWT", "kid": ec_key.kid}))
    keys = keys_from_jwks({"keys": [ec_key.public_jwk(), rsa_key.public_jwk()]})
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(f"{relabelled}.{payload}.{signature}", keys)
    # HS256 "signed" with the EC public JWK as the secret.
    public_bytes = orjson.dumps(ec_key.public_jwk())
    head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": ec_key.kid}))
    body = _b64(orjson.dumps(_claims()))
    mac = hmac.new(public_bytes, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(f"{head}.{body}.{_b64(mac)}", keys)


def test_ec_jwks_that_cannot_be_used_are_refused(ec_key: SigningKey) -> None:
    jwk = ec_key.public_jwk()
    off_curve = {
        **jwk,
        "y": _b64((int.from_bytes(jws.b64url_decode(jwk["y"]), "big") ^ 1).to_bytes(32, "big")),
    }
    short = {**jwk, "x": _b64(jws.b64url_decode(jwk["x"])[1:])}
    p384 = {**jwk, "crv": "P-384"}
    wrong_alg = {**jwk, "alg": "RS256"}
    for bad, reason in [
        (off_curve, "not a valid public key"),
        (short, "not 32 bytes"),
        (p384, "P-256"),
        (wrong_alg, "alg does not match"),
    ]:
        with pytest.raises(InvalidJWS, match=reason):
            VerificationKey.from_jwk(bad)
    # In a JWK Set, unusable keys are skipped; the good one stays.
    loaded = keys_from_jwks({"keys": [{**off_curve, "kid": "bad"}, jwk]})
    assert list(loaded) == [ec_key.kid]


def test_other_curves_cannot_sign_or_verify() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError, match="P-256"):
        SigningKey("ES256", None, private_key=p384)
    p521 = ec.generate_private_key(ec.SECP521R1())
    with pytest.raises(ValueError, match="P-256"):
        VerificationKey.from_public_key(p521.public_key())
    with pytest.raises(ValueError, match="P-384"):
        SigningKey("ES384", None, private_key=p521)
    with pytest.raises(ValueError, match="cannot generate"):
        SigningKey.generate("HS256")
    with pytest.raises(ValueError, match="cannot generate"):
        SigningKey.generate("ES512")
