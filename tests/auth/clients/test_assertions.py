"""Client authentication with signed JWTs (private_key_jwt, SMART Backend Services): a backend
signs assertions with PyJWT and keys made with ``cryptography``, as a third party would."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from medmesh.auth.bootstrap import DEMO_SERVICE_CLIENT_ID
from medmesh.platform.tokens.jws import b64url_encode
from tests.auth.conftest import ISSUER, AuthHarness, basic_header, claims_of

TOKEN_URL = f"{ISSUER}/oauth/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class BackendKey:
    """A backend service's key pair and the public JWK it registers."""

    private: PrivateKey
    alg: str
    kid: str

    @classmethod
    def rsa(cls, alg: str = "RS384") -> BackendKey:
        return cls(rsa.generate_private_key(65537, 2048), alg, "rsa-" + uuid.uuid4().hex[:8])

    @classmethod
    def ec(cls, alg: str = "ES384") -> BackendKey:
        curve = ec.SECP384R1() if alg == "ES384" else ec.SECP256R1()
        return cls(ec.generate_private_key(curve), alg, "ec-" + uuid.uuid4().hex[:8])

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        jwk: dict[str, Any] = (
            RSAAlgorithm.to_jwk(public, as_dict=True)
            if isinstance(public, rsa.RSAPublicKey)
            else ECAlgorithm.to_jwk(public, as_dict=True)
        )
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def assertion(self, client_id: str, **overrides: Any) -> str:
        """A SMART Backend Services assertion; ``overrides`` replace claims (None drops one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": TOKEN_URL,
            "exp": now + 240,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid})


def unsigned(header: dict[str, Any], claims: dict[str, Any], key: bytes | None = None) -> str:
    """A compact JWS signed HS256 with ``key`` (or with no signature when ``key`` is None)."""
    import orjson

    signing_input = b64url_encode(orjson.dumps(header)) + b"." + b64url_encode(orjson.dumps(claims))
    signature = b"" if key is None else hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64url_encode(signature)).decode()


def smart_claims(client_id: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }


async def register(auth: AuthHarness, *keys: BackendKey, **fields: Any) -> str:
    body = {
        "name": "bulk export of a payer",
        "scope": "system/Patient.rs system/Observation.rs",
        "roles": ["service"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [k.public_jwk() for k in keys]},
        **fields,
    }
    response = await auth.http.post("/admin/clients", json=body, headers=await auth.admin_headers())
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["client_secret"] is None
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    return str(created["client_id"])


async def token_with(
    auth: AuthHarness, assertion: str, headers: dict[str, str] | None = None, **form: str
) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        **form,
    }
    return await auth.http.post("/oauth/token", data=data, headers=headers or {})


async def issued_count(auth: AuthHarness) -> int:
    return len(await auth.audit_events(action="auth.token_issued"))


async def assert_refused(
    auth: AuthHarness, response: httpx.Response, description: str, reason: str
) -> None:
    """401 invalid_client with ``description``, no token, and the refusal audited."""
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "invalid_client", "error_description": description}
    assert response.headers["www-authenticate"].startswith("Basic")
    refusals = await auth.audit_events(action="auth.client_assertion_refused")
    assert refusals[-1]["outcome"] == "failure"
    assert refusals[-1]["details"] == {"reason": reason}


# --- refusals first --------------------------------------------------------------------------


async def test_a_replayed_assertion_is_refused_and_issues_nothing(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    assertion = key.assertion(client_id)
    assert (await token_with(auth, assertion)).status_code == 200
    before = await issued_count(auth)
    replay = await token_with(auth, assertion)
    await assert_refused(auth, replay, "client_assertion was already used (jti)", "replayed")
    assert await issued_count(auth) == before
    assert await auth.count("client_assertion_jtis") == 1


async def test_an_expired_assertion_is_refused(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    response = await token_with(auth, key.assertion(client_id, exp=int(time.time()) - 5))
    await assert_refused(auth, response, "client_assertion has expired", "expired")
    assert await issued_count(auth) == 0
    assert await auth.count("client_assertion_jtis") == 0


async def test_an_assertion_expiring_more_than_five_minutes_ahead_is_refused(
    auth: AuthHarness,
) -> None:
    key = BackendKey.ec()
    client_id = await register(auth, key)
    response = await token_with(auth, key.assertion(client_id, exp=int(time.time()) + 600))
    await assert_refused(
        auth, response, "client_assertion exp is more than 300 s ahead", "exp_too_far"
    )
    assert await issued_count(auth) == 0


@pytest.mark.parametrize(
    "aud", [f"{ISSUER}/oauth/introspect", "http://elsewhere.test/oauth/token", [ISSUER]]
)
async def test_an_assertion_for_another_audience_is_refused(auth: AuthHarness, aud: Any) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    response = await token_with(auth, key.assertion(client_id, aud=aud))
    await assert_refused(
        auth, response, f"client_assertion aud must be the token endpoint {TOKEN_URL}", "audience"
    )
    assert await issued_count(auth) == 0


async def test_hs256_signed_with_the_public_key_is_refused(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    forged = unsigned(
        {"alg": "HS256", "typ": "JWT", "kid": key.kid}, smart_claims(client_id), key.public_pem()
    )
    response = await token_with(auth, forged)
    await assert_refused(
        auth, response, "client_assertion must be signed RS256, RS384, ES256 or ES384", "algorithm"
    )
    assert await issued_count(auth) == 0


async def test_alg_none_is_refused(auth: AuthHarness) -> None:
    key = BackendKey.ec()
    client_id = await register(auth, key)
    forged = unsigned({"alg": "none", "kid": key.kid}, smart_claims(client_id))
    response = await token_with(auth, forged)
    await assert_refused(
        auth, response, "client_assertion must be signed RS256, RS384, ES256 or ES384", "algorithm"
    )
    assert await issued_count(auth) == 0


async def test_an_assertion_relabelled_to_another_algorithm_is_refused(auth: AuthHarness) -> None:
    key = BackendKey.rsa("RS384")
    client_id = await register(auth, key)
    signed = jwt.encode(
        smart_claims(client_id), key.private, algorithm="RS256", headers={"kid": key.kid}
    )
    response = await token_with(auth, signed)
    await assert_refused(
        auth, response, "client_assertion: token algorithm does not match the key", "signature"
    )


async def test_an_unknown_kid_is_refused(auth: AuthHarness) -> None:
    key, other = BackendKey.rsa(), BackendKey.rsa()
    client_id = await register(auth, key)
    response = await token_with(auth, other.assertion(client_id))
    await assert_refused(
        auth, response, "client_assertion kid names no key of the client", "unknown_kid"
    )
    assert await issued_count(auth) == 0


async def test_a_key_of_the_client_that_did_not_sign_is_refused(auth: AuthHarness) -> None:
    key, impostor = BackendKey.ec(), BackendKey.ec()
    client_id = await register(auth, key)
    impostor.kid = key.kid
    response = await token_with(auth, impostor.assertion(client_id))
    await assert_refused(
        auth, response, "client_assertion: token signature does not verify", "signature"
    )


async def test_a_client_registered_with_a_secret_cannot_use_an_assertion(
    auth: AuthHarness,
) -> None:
    key = BackendKey.rsa()
    await register(auth, key)
    response = await token_with(auth, key.assertion(DEMO_SERVICE_CLIENT_ID))
    await assert_refused(
        auth,
        response,
        "this client authenticates with a secret, not a client_assertion",
        "not_private_key_jwt",
    )
    assert await issued_count(auth) == 0


async def test_a_private_key_jwt_client_has_no_secret_to_use(auth: AuthHarness) -> None:
    client_id = await register(auth, BackendKey.rsa())
    for secret in ("", "mmcs_guess"):
        response = await auth.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic_header(client_id, secret),
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    rotate = await auth.http.post(
        f"/admin/clients/{client_id}/secret", headers=await auth.admin_headers()
    )
    assert rotate.status_code == 409
    assert await issued_count(auth) == 0


async def test_an_assertion_with_a_secret_too_is_refused(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    response = await token_with(
        auth, key.assertion(client_id), headers=basic_header(DEMO_SERVICE_CLIENT_ID, "x")
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "use exactly one client authentication method",
    }
    assert await issued_count(auth) == 0


async def test_an_assertion_with_a_secret_in_the_body_is_refused(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    response = await token_with(auth, key.assertion(client_id), client_secret="x")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "use exactly one client authentication method",
    }
    assert await issued_count(auth) == 0


async def test_iss_and_sub_must_both_name_the_client(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    response = await token_with(auth, key.assertion(client_id, sub="someone-else"))
    await assert_refused(
        auth, response, "client_assertion iss and sub must both be the client_id", "iss"
    )
    missing_jti = await token_with(auth, key.assertion(client_id, jti=None))
    await assert_refused(auth, missing_jti, "client_assertion needs a jti", "no_jti")
    assert await issued_count(auth) == 0


async def test_a_disabled_client_is_refused(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, key)
    changed = await auth.http.patch(
        f"/admin/clients/{client_id}", json={"disabled": True}, headers=await auth.admin_headers()
    )
    assert changed.status_code == 200
    response = await token_with(auth, key.assertion(client_id))
    await assert_refused(auth, response, "client authentication failed", "unknown_client")


# --- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [BackendKey.rsa, BackendKey.ec], ids=["RS384", "ES384"])
async def test_a_signed_assertion_gets_a_token(auth: AuthHarness, make: Any) -> None:
    key = make()
    client_id = await register(auth, key)
    response = await token_with(auth, key.assertion(client_id), scope="system/Patient.rs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "system/Patient.rs"
    assert body["token_type"] == "Bearer"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    events = await auth.audit_events(action="auth.token_issued")
    assert events[-1]["client_id"] == client_id
    assert events[-1]["details"] == {
        "grant_type": "client_credentials",
        "scope": "system/Patient.rs",
    }


async def test_a_client_id_in_the_form_must_match_the_assertion(auth: AuthHarness) -> None:
    key = BackendKey.ec("ES256")
    client_id = await register(auth, key)
    ok = await token_with(auth, key.assertion(client_id), client_id=client_id)
    assert ok.status_code == 200, ok.text
    other = await token_with(auth, key.assertion(client_id), client_id=DEMO_SERVICE_CLIENT_ID)
    await assert_refused(auth, other, "client_id does not match the client_assertion", "iss")


async def test_registration_refuses_keys_that_cannot_authenticate(auth: AuthHarness) -> None:
    key = BackendKey.rsa()
    headers = await auth.admin_headers()
    before = await auth.count("clients")
    cases: list[dict[str, Any]] = [
        {"token_endpoint_auth_method": "private_key_jwt"},
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_jwk()]},
            "jwks_uri": "https://keys.example/jwks.json",
        },
        {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://keys.example/j"},
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{**key.public_jwk(), "d": "AAAA"}]},
        },
        {"jwks": {"keys": [key.public_jwk()]}},
    ]
    for body in cases:
        response = await auth.http.post("/admin/clients", json=body, headers=headers)
        assert response.status_code in (400, 422), (body, response.text)
    assert await auth.count("clients") == before


async def test_an_admin_rotates_a_backends_keys(auth: AuthHarness) -> None:
    old, new = BackendKey.rsa(), BackendKey.ec()
    client_id = await register(auth, old)
    headers = await auth.admin_headers()
    changed = await auth.http.patch(
        f"/admin/clients/{client_id}", json={"jwks": {"keys": [new.public_jwk()]}}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["jwks"] == {"keys": [new.public_jwk()]}
    assert (await token_with(auth, new.assertion(client_id))).status_code == 200
    stale = await token_with(auth, old.assertion(client_id))
    await assert_refused(
        auth, stale, "client_assertion kid names no key of the client", "unknown_kid"
    )
    both = await auth.http.patch(
        f"/admin/clients/{client_id}",
        json={"jwks": {"keys": [new.public_jwk()]}, "jwks_uri": "https://b.example/jwks"},
        headers=headers,
    )
    assert both.status_code in (400, 422)
    secret_client = await auth.http.patch(
        f"/admin/clients/{DEMO_SERVICE_CLIENT_ID}",
        json={"jwks": {"keys": [new.public_jwk()]}},
        headers=headers,
    )
    assert secret_client.status_code == 409
