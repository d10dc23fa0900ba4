"""RS384 and ES384 (RFC 7518 §3.3, §3.4): issue, verify, interoperate, and refuse forgeries."""

import base64
import hashlib
import hmac
import time

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from medmesh.platform.errors import Unauthorized
from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import (
    InvalidJWS,
    SigningKey,
    TokenVerifier,
    UnknownKeyId,
    VerificationKey,
    jws,
    keys_from_jwks,
    verify_compact,
)

ISSUER = "http://auth.test"


@pytest.fixture(scope="module")
def rs384() -> SigningKey:
    return SigningKey.generate("RS384")


@pytest.fixture(scope="module")
def es384() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return SigningKey.generate("ES256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims() -> dict[str, object]:
    return {"sub": "u1", "exp": int(time.time()) + 60, "scope": "openid"}


def _relabel(token: str, **header: object) -> str:
    """``token`` with its header replaced (payload and signature kept)."""
    _, payload, signature = token.split(".")
    return f"{_b64(orjson.dumps(header))}.{payload}.{signature}"


def _private(key: SigningKey) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    private = serialization.load_pem_private_key(key.private_pem(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return private


def test_rs384_round_trip_through_the_public_jwk(rs384: SigningKey) -> None:
    token = rs384.sign(_claims())
    jwk = rs384.public_jwk()

    header, claims = verify_compact(token, keys_from_jwks({"keys": [jwk]}))

    assert header == {"alg": "RS384", "typ": "JWT", "kid": rs384.kid}
    assert claims["sub"] == "u1"
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS384", "sig")
    assert len(jws.b64url_decode(token.split(".")[2])) == 256  # RSA 2048


def test_es384_round_trip_through_the_public_jwk(es384: SigningKey) -> None:
    token = es384.sign(_claims())
    jwk = es384.public_jwk()

    header, claims = verify_compact(token, keys_from_jwks({"keys": [jwk]}))

    assert header == {"alg": "ES384", "typ": "JWT", "kid": es384.kid}
    assert claims["sub"] == "u1"
    assert set(jwk) == {"kty", "kid", "use", "alg", "crv", "x", "y"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-384", "ES384", "sig")
    # Coordinates are the full 48 bytes (RFC 7518 §6.2.1.2), the signature R || S is 96 bytes.
    assert len(jwk["x"]) == len(jwk["y"]) == 64
    assert len(jws.b64url_decode(token.split(".")[2])) == 96


def test_es384_kid_is_the_rfc7638_thumbprint(es384: SigningKey) -> None:
    jwk = es384.public_jwk()
    canonical = orjson.dumps({"crv": "P-384", "kty": "EC", "x": jwk["x"], "y": jwk["y"]})
    assert es384.kid == _b64(hashlib.sha256(canonical).digest())


def test_pem_round_trips_keep_key_and_algorithm(rs384: SigningKey, es384: SigningKey) -> None:
    # A P-384 PEM can only be ES384; an RSA PEM is RS256 unless the caller names RS384.
    assert SigningKey.from_pem(es384.private_pem()).alg == "ES384"
    assert SigningKey.from_pem(rs384.private_pem()).alg == "RS256"
    again = SigningKey.from_pem(rs384.private_pem(), kid=rs384.kid, alg="RS384")
    assert (again.alg, again.kid) == ("RS384", rs384.kid)
    assert verify_compact(again.sign(_claims()), rs384.verification_key())[1]["sub"] == "u1"
    with pytest.raises(ValueError, match="P-256"):
        SigningKey.from_pem(es384.private_pem(), alg="ES256")
    with pytest.raises(ValueError, match="RSA"):
        SigningKey.from_pem(es384.private_pem(), alg="RS384")


def test_generated_keys_and_their_refusals() -> None:
    assert SigningKey.generate_rsa(alg="RS384").alg == "RS384"
    assert SigningKey.generate_ec(alg="ES384").alg == "ES384"
    with pytest.raises(ValueError, match="not an ECDSA algorithm"):
        SigningKey.generate_ec(alg="RS384")
    with pytest.raises(ValueError, match="2048"):
        SigningKey.generate_rsa(key_size=1024, alg="RS384")
    with pytest.raises(ValueError, match="P-384"):
        SigningKey("ES384", None, private_key=ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_interoperates_with_pyjwt_and_joserfc(
    alg: str, rs384: SigningKey, es384: SigningKey
) -> None:
    import jwt as pyjwt
    from joserfc import jwk as joserfc_jwk
    from joserfc import jwt as joserfc_jwt

    key = rs384 if alg == "RS384" else es384
    jwk = key.public_jwk()
    keys = keys_from_jwks({"keys": [jwk]})
    ours = key.sign(_claims())

    public = pyjwt.PyJWK.from_dict(jwk).key
    assert pyjwt.decode(ours, public, algorithms=[alg])["sub"] == "u1"
    their_key = joserfc_jwk.import_key(jwk, jwk["kty"])  # type: ignore[call-overload]
    assert joserfc_jwt.decode(ours, their_key, algorithms=[alg]).claims["sub"] == "u1"

    by_pyjwt = pyjwt.encode(_claims(), _private(key), algorithm=alg, headers={"kid": key.kid})
    assert verify_compact(by_pyjwt, keys)[1]["sub"] == "u1"
    private_jwk = joserfc_jwk.import_key(key.private_pem(), jwk["kty"])  # type: ignore[call-overload]
    by_joserfc = joserfc_jwt.encode(
        {"alg": alg, "kid": key.kid}, _claims(), private_jwk, algorithms=[alg]
    )
    assert verify_compact(by_joserfc, keys)[1]["sub"] == "u1"


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_tampered_payload_and_signature_are_refused(
    alg: str, rs384: SigningKey, es384: SigningKey
) -> None:
    key = rs384 if alg == "RS384" else es384
    head, payload, signature = key.sign(_claims()).split(".")
    forged_payload = _b64(orjson.dumps({**_claims(), "sub": "admin"}))
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(f"{head}.{forged_payload}.{signature}", key.verification_key())
    raw = bytearray(jws.b64url_decode(signature))
    raw[10] ^= 1
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(f"{head}.{payload}.{_b64(bytes(raw))}", key.verification_key())


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_alg_none_is_refused(alg: str, rs384: SigningKey, es384: SigningKey) -> None:
    key = rs384 if alg == "RS384" else es384
    keys = keys_from_jwks({"keys": [key.public_jwk()]})
    unsigned = _relabel(key.sign(_claims()), alg="none", typ="JWT", kid=key.kid)
    for token in (unsigned, unsigned.rsplit(".", 1)[0] + "."):
        with pytest.raises(InvalidJWS, match="not allowed"):
            verify_compact(token, keys)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
@pytest.mark.parametrize("hmac_alg", ["HS256", "HS384"])
def test_hmac_signed_with_the_public_key_is_refused(
    alg: str, hmac_alg: str, rs384: SigningKey, es384: SigningKey
) -> None:
    key = rs384 if alg == "RS384" else es384
    keys = keys_from_jwks({"keys": [key.public_jwk()]})
    public = key.verification_key().public_key
    assert public is not None
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.sha256 if hmac_alg == "HS256" else hashlib.sha384
    reason = "does not match the key" if hmac_alg == "HS256" else "not allowed"
    for secret in (pem, orjson.dumps(key.public_jwk())):
        head = _b64(orjson.dumps({"alg": hmac_alg, "typ": "JWT", "kid": key.kid}))
        body = _b64(orjson.dumps(_claims()))
        mac = hmac.new(secret, f"{head}.{body}".encode(), digest).digest()
        with pytest.raises(InvalidJWS, match=reason):
            verify_compact(f"{head}.{body}.{_b64(mac)}", keys)


def test_rsa_tokens_never_cross_between_rs256_and_rs384(rs384: SigningKey) -> None:
    # One RSA key published for RS384: a token relabelled RS256 is refused, and so is a
    # genuine RS256 signature of that key — the key verifies only the algorithm it is bound to.
    keys = keys_from_jwks({"keys": [rs384.public_jwk()]})
    relabelled = _relabel(rs384.sign(_claims()), alg="RS256", typ="JWT", kid=rs384.kid)
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(relabelled, keys)
    head = _b64(orjson.dumps({"alg": "RS256", "typ": "JWT", "kid": rs384.kid}))
    body = _b64(orjson.dumps(_claims()))
    private = _private(rs384)
    assert isinstance(private, rsa.RSAPrivateKey)
    sha256 = private.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(f"{head}.{body}.{_b64(sha256)}", keys)
    # The same key checking an RS384 signature as RS256 (a key object bound to RS256).
    as_rs256 = VerificationKey.from_public_key(private.public_key(), rs384.kid)
    assert as_rs256.alg == "RS256"
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(rs384.sign(_claims()), as_rs256)


def test_curves_never_cross(es256: SigningKey, es384: SigningKey) -> None:
    keys = keys_from_jwks({"keys": [es256.public_jwk(), es384.public_jwk()]})
    # A header that names the other curve's algorithm under each key's own kid.
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(_relabel(es256.sign(_claims()), alg="ES384", kid=es256.kid), keys)
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(_relabel(es384.sign(_claims()), alg="ES256", kid=es384.kid), keys)
    # A key object claiming ES384 over a P-256 key verifies nothing, even a P-256 signature.
    p256 = es256.verification_key().public_key
    assert isinstance(p256, ec.EllipticCurvePublicKey)
    wrong_curve = VerificationKey("ES384", "wrong", public_key=p256)
    head, payload, signature = es256.sign(_claims()).split(".")
    assert not wrong_curve.verify(f"{head}.{payload}".encode(), jws.b64url_decode(signature))
    forged = _relabel(es256.sign(_claims()), alg="ES384", kid="wrong")
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(forged, {"wrong": wrong_curve})
    with pytest.raises(ValueError, match="P-384"):
        VerificationKey.from_public_key(p256, alg="ES384")


def test_es384_psychic_and_short_signatures_are_refused(es384: SigningKey) -> None:
    head, payload, signature = es384.sign(_claims()).split(".")
    for raw in (bytes(96), jws.b64url_decode(signature)[:64], bytes(64)):
        with pytest.raises(InvalidJWS, match="does not verify"):
            verify_compact(f"{head}.{payload}.{_b64(raw)}", es384.verification_key())


def test_p384_jwks_that_cannot_be_used_are_refused(es384: SigningKey) -> None:
    jwk = es384.public_jwk()
    y = int.from_bytes(jws.b64url_decode(jwk["y"]), "big")
    off_curve = {**jwk, "y": _b64((y ^ 1).to_bytes(48, "big"))}
    short = {**jwk, "x": _b64(jws.b64url_decode(jwk["x"])[1:])}
    as_p256 = {**jwk, "crv": "P-256"}
    p256_sized_wrong = {**{k: v for k, v in jwk.items() if k != "alg"}, "crv": "P-256"}
    p521 = {**jwk, "crv": "P-521", "alg": "ES512"}
    wrong_alg = {**jwk, "alg": "RS384"}
    for bad, reason in [
        (off_curve, "not a valid public key"),
        (short, "not 48 bytes"),
        (as_p256, "needs a P-384 key, not P-256"),
        (p256_sized_wrong, "not 32 bytes"),
        (p521, "not a P-256 or P-384 key"),
        (wrong_alg, "alg does not match"),
    ]:
        with pytest.raises(InvalidJWS, match=reason):
            VerificationKey.from_jwk(bad)
    loaded = keys_from_jwks({"keys": [{**off_curve, "kid": "bad"}, {**p521, "kid": "x"}, jwk]})
    assert list(loaded) == [es384.kid]


def test_rsa_jwks_are_bound_to_their_alg(rs384: SigningKey) -> None:
    jwk = rs384.public_jwk()
    assert VerificationKey.from_jwk(jwk).alg == "RS384"
    assert VerificationKey.from_jwk({k: v for k, v in jwk.items() if k != "alg"}).alg == "RS256"
    for alg in ("ES384", "PS384", "RS512", "none"):
        with pytest.raises(InvalidJWS, match="alg does not match its RSA key"):
            VerificationKey.from_jwk({**jwk, "alg": alg})


def test_a_kid_naming_another_key_is_refused(rs384: SigningKey, es384: SigningKey) -> None:
    other_es384 = SigningKey.generate("ES384", kid="other")
    keys = keys_from_jwks(
        {"keys": [rs384.public_jwk(), es384.public_jwk(), other_es384.public_jwk()]}
    )
    # Signed by one ES384 key, the header names the other one: the signature does not verify.
    swapped = _relabel(es384.sign(_claims()), alg="ES384", typ="JWT", kid="other")
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(swapped, keys)
    # Signed by the RSA key, the header names the EC key: the algorithms differ.
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(_relabel(rs384.sign(_claims()), alg="RS384", kid=es384.kid), keys)
    with pytest.raises(UnknownKeyId):
        verify_compact(_relabel(es384.sign(_claims()), alg="ES384", kid="nobody"), keys)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_the_verifier_accepts_them_from_a_jwk_set(
    alg: str, rs384: SigningKey, es384: SigningKey
) -> None:
    key = rs384 if alg == "RS384" else es384
    factory = TokenFactory(ISSUER)
    factory.key = key
    verifier = TokenVerifier(ISSUER, "medmesh-phi", jwks=factory.jwks())

    assert alg in verifier.algorithms
    principal = await verifier.verify(factory.token("system/*.rs", audience="medmesh-phi"))
    assert principal.sub == "user-1"
    assert principal.has_scope("system/Patient.rs")
    forged = _relabel(factory.token("system/*.rs", audience="medmesh-phi"), alg="HS384")
    with pytest.raises(Unauthorized, match="not allowed") as refused:
        verifier.verify_cached(forged)
    assert refused.value.status == 401
