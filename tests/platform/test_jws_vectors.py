"""Published JWS test vectors: RFC 7515 Appendix A.1-A.3 and RFC 7520 §4.1 and §4.4.

The keys and tokens are the RFCs' texts unchanged (RFC 7520's as the IETF JOSE working group's
cookbook repository carries them). ES256 signatures are randomised, so A.3 is verified, not
reproduced. RFC 7520 signs a line of prose, not a JSON object: its vectors check the signature
itself, and show that a compact JWS whose payload is not a claims object is never an access token.
"""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from medmesh.platform.tokens import (
    InvalidJWS,
    SigningKey,
    VerificationKey,
    b64url_decode,
    keys_from_jwks,
    verify_compact,
)

# RFC 7515 A.1-A.3 sign the same payload: {"iss":"joe",\r\n "exp":1300819380,\r\n ...}.
RFC7515_CLAIMS = {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
RFC7515_PAYLOAD = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)

# RFC 7515 A.1: HS256.
A1_KEY = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
A1_JWS = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    + RFC7515_PAYLOAD
    + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

# RFC 7515 A.2: RS256.
A2_JWK = {
    "kty": "RSA",
    "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4"
    "d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5re"
    "xMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxX"
    "FvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
    "e": "AQAB",
}
A2_JWS = (
    "eyJhbGciOiJSUzI1NiJ9."
    + RFC7515_PAYLOAD
    + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"
    "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L"
    "07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEU"
    "ipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
)

# RFC 7515 A.3: ES256.
A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
A3_D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
A3_JWS = (
    "eyJhbGciOiJFUzI1NiJ9."
    + RFC7515_PAYLOAD
    + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)

# RFC 7520 §4 signs this text (§4 figure 7) under the keys of §3.4 (RSA) and §3.5 (HMAC).
RFC7520_PAYLOAD = (
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250by"
    "B0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUg"
    "eW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
)
RFC7520_TEXT = (
    "It\u2019s a dangerous business, Frodo, going out your door. You step onto the road, and if "
    "you don't keep your feet, there\u2019s no knowing where you might be swept off to."
)
# RFC 7520 §3.4: the RSA key (public part).
RFC7520_RSA_JWK = {
    "kty": "RSA",
    "kid": "bilbo.baggins@hobbiton.example",
    "use": "sig",
    "n": "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmS"
    "CpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-Of"
    "VfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKw"
    "uCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw",
    "e": "AQAB",
}
# RFC 7520 §4.1: RSA v1.5 signature (RS256).
RFC7520_4_1_JWS = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9."
    + RFC7520_PAYLOAD
    + ".MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xugl"
    "II7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8"
    "wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_o"
    "I-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg"
)
# RFC 7520 §3.5: the symmetric key; §4.4: HMAC-SHA2 integrity protection (HS256).
RFC7520_HMAC_KEY = "hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"
RFC7520_4_4_JWS = (
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9."
    + RFC7520_PAYLOAD
    + ".s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0"
)


def _signing_input_and_signature(token: str) -> tuple[bytes, bytes]:
    signing_input, _, signature = token.rpartition(".")
    return signing_input.encode(), b64url_decode(signature)


def _flip_last_signature_byte(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[-1] ^= 1
    return f"{head}.{payload}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}"


def test_rfc7515_a1_hs256() -> None:
    key = VerificationKey.hs256(b64url_decode(A1_KEY))

    header, claims = verify_compact(A1_JWS, key)

    assert header == {"typ": "JWT", "alg": "HS256"}
    assert claims == RFC7515_CLAIMS
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(_flip_last_signature_byte(A1_JWS), key)


def test_rfc7515_a2_rs256() -> None:
    key = VerificationKey.from_jwk(A2_JWK)

    header, claims = verify_compact(A2_JWS, key)

    assert key.alg == "RS256"  # a JWK without alg is bound to RS256
    assert header == {"alg": "RS256"}
    assert claims == RFC7515_CLAIMS
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(_flip_last_signature_byte(A2_JWS), key)
    # The same published key, published for RS384, does not verify the RS256 token.
    with pytest.raises(InvalidJWS, match="does not match the key"):
        verify_compact(A2_JWS, VerificationKey.from_jwk({**A2_JWK, "alg": "RS384"}))


def test_rfc7515_a2_through_a_jwk_set_needs_a_kid() -> None:
    # A.2's header names no key: a verifier that picks keys by kid refuses it.
    keys = keys_from_jwks({"keys": [{**A2_JWK, "kid": "a2"}]})
    assert list(keys) == ["a2"]
    with pytest.raises(InvalidJWS, match="no kid"):
        verify_compact(A2_JWS, keys)


def test_rfc7515_a3_es256() -> None:
    key = VerificationKey.from_jwk(A3_JWK)

    header, claims = verify_compact(A3_JWS, key)

    assert key.alg == "ES256"
    assert header == {"alg": "ES256"}
    assert claims == RFC7515_CLAIMS
    with pytest.raises(InvalidJWS, match="does not verify"):
        verify_compact(_flip_last_signature_byte(A3_JWS), key)


def test_rfc7515_a3_private_key_signs_what_its_public_key_verifies() -> None:
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(A3_JWK["x"]), "big"),
        int.from_bytes(b64url_decode(A3_JWK["y"]), "big"),
        ec.SECP256R1(),
    )
    private = ec.EllipticCurvePrivateNumbers(int.from_bytes(b64url_decode(A3_D), "big"), public)
    signer = SigningKey("ES256", "a3", private_key=private.private_key())

    assert {k: signer.public_jwk()[k] for k in A3_JWK} == A3_JWK
    token = signer.sign(RFC7515_CLAIMS)
    assert verify_compact(token, VerificationKey.from_jwk(A3_JWK))[1] == RFC7515_CLAIMS


def test_rfc7520_4_1_rs256_signature() -> None:
    key = VerificationKey.from_jwk(RFC7520_RSA_JWK)
    signing_input, signature = _signing_input_and_signature(RFC7520_4_1_JWS)

    assert b64url_decode(RFC7520_PAYLOAD).decode() == RFC7520_TEXT
    assert (key.alg, key.kid) == ("RS256", "bilbo.baggins@hobbiton.example")
    assert key.verify(signing_input, signature)
    assert not key.verify(signing_input + b"x", signature)
    # A JWS whose payload is prose is not an access token.
    with pytest.raises(InvalidJWS, match="payload is not JSON"):
        verify_compact(RFC7520_4_1_JWS, keys_from_jwks({"keys": [RFC7520_RSA_JWK]}))


def test_rfc7520_4_4_hs256_signature() -> None:
    key = VerificationKey.hs256(b64url_decode(RFC7520_HMAC_KEY))
    signing_input, signature = _signing_input_and_signature(RFC7520_4_4_JWS)

    assert key.verify(signing_input, signature)
    assert not key.verify(signing_input, signature[:-1] + bytes([signature[-1] ^ 1]))
    with pytest.raises(InvalidJWS, match="payload is not JSON"):
        verify_compact(RFC7520_4_4_JWS, key)
