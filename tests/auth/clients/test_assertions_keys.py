"""What a client may register as its keys: a public JWK Set, or an https jwks_uri."""

from __future__ import annotations

from typing import Any

import pytest

from medmesh.auth.clients.jwks import MAX_KEYS, check_jwks, check_jwks_uri
from tests.auth.clients.test_assertions import BackendKey


@pytest.mark.parametrize(
    "uri",
    [
        "https://backend.example/jwks.json",
        "http://localhost:8080/jwks.json",
        "http://127.0.0.1/jwks",
        "http://[::1]:9000/jwks",
    ],
)
def test_https_and_loopback_jwks_uris_are_accepted(uri: str) -> None:
    assert check_jwks_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://backend.example/jwks.json", "https (http only on localhost)"),
        ("ftp://backend.example/jwks.json", "absolute https URL"),
        ("/jwks.json", "absolute https URL"),
        ("https://user:pw@backend.example/jwks.json", "no credentials"),
        ("https://backend.example/jwks.json#keys", "no fragment"),
    ],
)
def test_other_jwks_uris_are_refused(uri: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_jwks_uri(uri)


def test_a_jwks_must_hold_a_usable_public_signing_key() -> None:
    key = BackendKey.rsa()
    assert set(check_jwks({"keys": [key.public_jwk()]})) == {key.kid}
    no_kid = {k: v for k, v in key.public_jwk().items() if k != "kid"}
    refused: list[tuple[dict[str, Any], str]] = [
        ({}, "non-empty keys array"),
        ({"keys": []}, "non-empty keys array"),
        ({"keys": ["x"]}, "JWK object"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}, "public keys only"),
        ({"keys": [no_kid]}, "no RS256, RS384, ES256 or ES384 signing key"),
        ({"keys": [key.public_jwk()] * (MAX_KEYS + 1)}, f"at most {MAX_KEYS} keys"),
    ]
    for jwks, reason in refused:
        with pytest.raises(ValueError, match=reason):
            check_jwks(jwks)
