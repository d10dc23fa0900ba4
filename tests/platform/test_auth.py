import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from medmesh.platform.errors import MedmeshError, Unauthorized, render_problem
from medmesh.platform.tokens import (
    CurrentPrincipal,
    Principal,
    RequireScopes,
    RevocationSet,
    SigningKey,
    TokenVerifier,
    revocation_key,
)

ISSUER = "http://auth.test"
AUDIENCE = "medmesh-phi"
SECRET = "a-shared-secret-of-at-least-32-bytes!"


class JWKSServer:
    """A real HTTP server on a free local port that serves a JWK Set and counts requests."""

    def __init__(self) -> None:
        self.keys: list[dict[str, str]] = []
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = orjson.dumps({"keys": owner.keys})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def signing_key(request: pytest.FixtureRequest) -> SigningKey:
    """The issuer's key: every verifier test runs with an RSA and with an EC key ring."""
    return SigningKey.generate(request.param)


@pytest.fixture
def jwks_server(signing_key: SigningKey) -> Iterator[JWKSServer]:
    server = JWKSServer()
    server.keys = [signing_key.public_jwk()]
    yield server
    server.close()


@pytest.fixture
def verifier(jwks_server: JWKSServer) -> TokenVerifier:
    return TokenVerifier(ISSUER, AUDIENCE, jwks_url=jwks_server.url)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": [AUDIENCE, "medmesh-payments"],
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": "jti-1",
        "scope": "openid patient/Observation.rs",
        "client_id": "portal",
        "roles": ["patient"],
        "patient": "Patient/p1",
        "fhirUser": "Patient/p1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(verifier: TokenVerifier, token: str, reason: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    error = caught.value
    assert (error.status, error.code) == (401, "invalid_token")
    assert reason in error.message
    challenge = error.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="medmesh", error="invalid_token", error_description=')
    assert token not in challenge
    assert token not in error.message
    return error


async def test_valid_token_gives_a_principal(
    verifier: TokenVerifier, signing_key: SigningKey
) -> None:
    token = signing_key.sign(claims())
    principal = await verifier.verify(token)

    assert principal.sub == "user-1"
    assert principal.client_id == "portal"
    assert principal.roles == frozenset({"patient"})
    assert principal.patient == "Patient/p1"
    assert principal.fhir_user == "Patient/p1"
    assert principal.audience == (AUDIENCE, "medmesh-payments")
    assert principal.scopes.allows("Observation", "r")
    assert principal.has_scope("openid")
    assert not principal.has_scope("auth:admin")
    assert principal.raw_scope == "openid patient/Observation.rs"
    assert principal.expires_at.tzinfo is UTC
    assert principal.expires_at > datetime.now(UTC)
    assert not principal.is_service
    assert verifier.verify_cached(token) == principal


async def test_refuses_alg_none(verifier: TokenVerifier, signing_key: SigningKey) -> None:
    header = b64(orjson.dumps({"alg": "none", "typ": "JWT", "kid": signing_key.kid}))
    await refused(verifier, f"{header}.{b64(orjson.dumps(claims()))}.", "not allowed")


async def test_refuses_hs256_signed_with_the_rsa_public_key(
    jwks_server: JWKSServer, signing_key: SigningKey
) -> None:
    public_pem = signing_key.verification_key().public_key.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": signing_key.kid}))
    signing_input = f"{header}.{b64(orjson.dumps(claims(sub='admin')))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(mac)}"

    rs_only = TokenVerifier(ISSUER, AUDIENCE, jwks_url=jwks_server.url)
    await refused(rs_only, forged, "algorithm is not allowed")
    # With a shared secret configured too, the HMAC is checked with the secret, never the RSA key.
    both = TokenVerifier(ISSUER, AUDIENCE, jwks_url=jwks_server.url, hs256_secret=SECRET)
    await refused(both, forged, "signature does not verify")


async def test_refuses_expired(verifier: TokenVerifier, signing_key: SigningKey) -> None:
    now = int(time.time())
    token = signing_key.sign(claims(exp=now - 120, iat=now - 1000, nbf=now - 1000))
    await refused(verifier, token, "expired")


async def test_expiry_within_leeway_is_accepted(
    verifier: TokenVerifier, signing_key: SigningKey
) -> None:
    await verifier.verify(signing_key.sign(claims(exp=int(time.time()) - 5)))


async def test_refuses_not_yet_valid(verifier: TokenVerifier, signing_key: SigningKey) -> None:
    await refused(verifier, signing_key.sign(claims(nbf=int(time.time()) + 120)), "not yet valid")


async def test_refuses_issued_in_the_future(
    verifier: TokenVerifier, signing_key: SigningKey
) -> None:
    await refused(verifier, signing_key.sign(claims(iat=int(time.time()) + 120)), "future")


async def test_refuses_wrong_issuer(verifier: TokenVerifier, signing_key: SigningKey) -> None:
    await refused(verifier, signing_key.sign(claims(iss="http://evil.test")), "issuer")


@pytest.mark.parametrize("aud", ["medmesh-payments", ["medmesh-devices"], [], 7])
async def test_refuses_wrong_audience(
    verifier: TokenVerifier, signing_key: SigningKey, aud: Any
) -> None:
    await refused(verifier, signing_key.sign(claims(aud=aud)), "not meant for this service")


async def test_single_string_audience_is_accepted(
    verifier: TokenVerifier, signing_key: SigningKey
) -> None:
    principal = await verifier.verify(signing_key.sign(claims(aud=AUDIENCE)))
    assert principal.audience == (AUDIENCE,)


async def test_refuses_tampered_payload(verifier: TokenVerifier, signing_key: SigningKey) -> None:
    header, _, signature = signing_key.sign(claims()).split(".")
    payload = b64(orjson.dumps(claims(scope="openid auth:admin")))
    await refused(verifier, f"{header}.{payload}.{signature}", "signature does not verify")


async def test_refuses_missing_exp(verifier: TokenVerifier, signing_key: SigningKey) -> None:
    await refused(verifier, signing_key.sign(claims(exp=None)), "no exp")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sub": None}, "no sub"),
        ({"iat": None}, "no iat"),
        ({"exp": "tomorrow"}, "not a number"),
        ({"roles": "admin"}, "roles"),
        ({"scope": "patient/Observation.xyz"}, "scope"),
        ({"patient": 5}, "patient"),
    ],
)
async def test_refuses_bad_claims(
    verifier: TokenVerifier, signing_key: SigningKey, overrides: dict[str, Any], reason: str
) -> None:
    await refused(verifier, signing_key.sign(claims(**overrides)), reason)


class FakeMonotonic:
    """A controllable ``time.monotonic`` for the verifier's refetch interval."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unknown_kid_is_refused_and_refetches_at_most_once(
    jwks_server: JWKSServer, signing_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr("medmesh.platform.tokens.verifier.time.monotonic", clock)
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_url=jwks_server.url, refresh_min_seconds=10)
    await verifier.verify(signing_key.sign(claims()))
    assert jwks_server.hits == 1
    clock.now += 11  # the first fetch counts against the interval too

    forger_pem = SigningKey.generate_rsa().private_pem()
    for n in range(5):
        forged = SigningKey.from_pem(forger_pem, kid=f"forged-{n}")
        await refused(verifier, forged.sign(claims()), "unknown key")
        clock.now += 1  # five forged kids within the interval: one refetch in all
    assert jwks_server.hits == 2
    # Known keys keep working without another fetch.
    await verifier.verify(signing_key.sign(claims()))
    assert jwks_server.hits == 2


async def test_rotated_key_is_picked_up_after_the_refresh_interval(
    jwks_server: JWKSServer, signing_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr("medmesh.platform.tokens.verifier.time.monotonic", clock)
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_url=jwks_server.url, refresh_min_seconds=10)
    await verifier.verify(signing_key.sign(claims()))
    new_key = SigningKey.generate_rsa(kid="2025-02")
    clock.now += 11
    await refused(verifier, new_key.sign(claims()), "unknown key")  # fetched before publication
    assert jwks_server.hits == 2
    jwks_server.keys = [signing_key.public_jwk(), new_key.public_jwk()]
    clock.now += 5
    await refused(verifier, new_key.sign(claims()), "unknown key")  # rate-limited: no fetch
    assert jwks_server.hits == 2

    clock.now += 6
    assert (await verifier.verify(new_key.sign(claims()))).sub == "user-1"
    assert jwks_server.hits == 3


async def test_cached_jwks_expires_after_cache_seconds(
    jwks_server: JWKSServer, signing_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr("medmesh.platform.tokens.verifier.time.monotonic", clock)
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks_url=jwks_server.url, cache_seconds=60, refresh_min_seconds=0
    )
    await verifier.verify(signing_key.sign(claims()))
    clock.now += 30
    await verifier.verify(signing_key.sign(claims()))
    assert jwks_server.hits == 1
    clock.now += 31
    await verifier.verify(signing_key.sign(claims()))
    assert jwks_server.hits == 2


async def test_unreachable_jwks_is_a_401_not_a_crash(signing_key: SigningKey) -> None:
    server = JWKSServer()
    url = server.url
    server.close()
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_url=url)
    await refused(verifier, signing_key.sign(claims()), "unknown key")


async def test_static_jwks_and_hs256(signing_key: SigningKey) -> None:
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks={"keys": [signing_key.public_jwk()]}, hs256_secret=SECRET
    )
    rs = verifier.verify_cached(signing_key.sign(claims()))
    hs = await verifier.verify(SigningKey.hs256(SECRET).sign(claims(sub="svc", client_id="svc")))
    assert rs.sub == "user-1"
    assert hs.is_service
    await refused(verifier, SigningKey.hs256("b" * 40).sign(claims()), "signature")


async def test_set_jwks_follows_an_issuers_key_ring(signing_key: SigningKey) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks={"keys": []})
    await refused(verifier, signing_key.sign(claims()), "unknown key")
    verifier.set_jwks({"keys": [signing_key.public_jwk()]})
    assert (await verifier.verify(signing_key.sign(claims()))).sub == "user-1"
    verifier.set_jwks({"keys": []})
    await refused(verifier, signing_key.sign(claims()), "unknown key")
    await verifier.aclose()


class Revoked:
    """A revocation check over a set the test fills (as a feed or auth's cache would)."""

    def __init__(self) -> None:
        self.entries = RevocationSet()

    def add(self, kind: str, value: str, revoked_at: int | None = None) -> None:
        at = int(time.time()) if revoked_at is None else revoked_at
        self.entries.add(revocation_key(kind, value), at, time.time() + 3600)

    async def refuses(
        self, *, jti: str | None, sid: str | None, sub: str, client_id: str, issued_at: float
    ) -> bool:
        return self.entries.refuses(
            jti=jti, sid=sid, sub=sub, client_id=client_id, issued_at=issued_at
        )


async def test_revocation_hook(signing_key: SigningKey) -> None:
    revoked = Revoked()
    revoked.add("jti", "jti-bad")
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks={"keys": [signing_key.public_jwk()]}, revocations=revoked
    )
    await verifier.verify(signing_key.sign(claims()))
    await refused(verifier, signing_key.sign(claims(jti="jti-bad")), "revoked")
    await refused(verifier, signing_key.sign(claims(jti=None)), "no jti")


async def test_a_revoked_session_user_or_client_refuses_the_tokens_issued_before(
    signing_key: SigningKey,
) -> None:
    now = int(time.time())
    revoked = Revoked()
    revoked.add("sid", "session-1")
    revoked.add("sub", "user-9", revoked_at=now - 100)
    revoked.add("client", "old-app", revoked_at=now - 100)
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks={"keys": [signing_key.public_jwk()]}, revocations=revoked
    )
    await refused(verifier, signing_key.sign(claims(sid="session-1")), "revoked")
    assert (await verifier.verify(signing_key.sign(claims(sid="session-2")))).sid == "session-2"
    # issued up to the second of the revocation: refused; issued after it: accepted
    for iat in (now - 200, now - 100):
        await refused(verifier, signing_key.sign(claims(sub="user-9", iat=iat)), "revoked")
        await refused(verifier, signing_key.sign(claims(client_id="old-app", iat=iat)), "revoked")
    assert (await verifier.verify(signing_key.sign(claims(sub="user-9", iat=now - 99)))).sub == (
        "user-9"
    )
    fresh = await verifier.verify(signing_key.sign(claims(client_id="old-app", iat=now - 99)))
    assert fresh.client_id == "old-app"


# --- FastAPI dependencies ---------------------------------------------------------------------

AdminPrincipal = Annotated[Principal, Depends(RequireScopes("auth:admin"))]
PatientsRead = Annotated[Principal, Depends(RequireScopes("user/Patient.r"))]
AnyAudit = Annotated[Principal, Depends(RequireScopes("audit:read", "auth:admin", any_of=True))]


@pytest.fixture
def app(signing_key: SigningKey) -> FastAPI:
    app = FastAPI()
    app.state.verifier = TokenVerifier(ISSUER, AUDIENCE, jwks={"keys": [signing_key.public_jwk()]})

    @app.exception_handler(MedmeshError)
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MedmeshError)
        return render_problem(request, exc)

    @app.get("/me")
    async def me(principal: CurrentPrincipal, request: Request) -> dict[str, str]:
        assert request.state.principal is principal
        return {"sub": principal.sub}

    @app.get("/admin")
    async def admin(principal: AdminPrincipal) -> dict[str, str]:
        return {"sub": principal.sub}

    @app.get("/patients")
    async def patients(principal: PatientsRead) -> dict[str, str]:
        return {"sub": principal.sub}

    @app.get("/audit")
    async def audit(principal: AnyAudit) -> dict[str, str]:
        return {"sub": principal.sub}

    return app


async def test_http_responses_and_challenges(app: FastAPI, signing_key: SigningKey) -> None:
    def bearer(scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {signing_key.sign(claims(scope=scope))}"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://phi") as client:
        missing = await client.get("/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="medmesh"'
        assert missing.headers["content-type"] == "application/problem+json"

        bad = await client.get("/me", headers={"Authorization": "Bearer not.a.token"})
        assert bad.status_code == 401
        assert bad.json()["code"] == "invalid_token"
        assert 'error="invalid_token"' in bad.headers["www-authenticate"]

        ok = await client.get("/me", headers=bearer("openid"))
        assert (ok.status_code, ok.json()) == (200, {"sub": "user-1"})

        forbidden = await client.get("/admin", headers=bearer("openid user/Patient.r"))
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "insufficient_scope"
        assert forbidden.headers["www-authenticate"] == (
            'Bearer realm="medmesh", error="insufficient_scope", scope="auth:admin"'
        )
        assert (await client.get("/admin", headers=bearer("auth:admin"))).status_code == 200

        # A SMART requirement is met by any context that grants the type and permission.
        for scope in ("patient/Patient.rs", "user/*.read", "system/Patient.r"):
            assert (await client.get("/patients", headers=bearer(scope))).status_code == 200
        for scope in ("patient/Observation.rs", "user/Patient.c", "openid"):
            assert (await client.get("/patients", headers=bearer(scope))).status_code == 403

        assert (await client.get("/audit", headers=bearer("audit:read"))).status_code == 200
        assert (await client.get("/audit", headers=bearer("payments:read"))).status_code == 403


async def test_a_remembered_token_is_refused_once_its_key_is_withdrawn(
    signing_key: SigningKey,
) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks={"keys": [signing_key.public_jwk()]})
    token = signing_key.sign(claims())
    assert (await verifier.verify(token)).sub == "user-1"
    assert (await verifier.verify(token)).sub == "user-1"  # remembered
    verifier.set_jwks({"keys": [SigningKey.generate_rsa().public_jwk()]})
    await refused(verifier, token, "unknown key")


async def test_a_remembered_token_is_refused_once_revoked(signing_key: SigningKey) -> None:
    revoked = Revoked()
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks={"keys": [signing_key.public_jwk()]}, revocations=revoked
    )
    token = signing_key.sign(claims(sid="session-1"))
    await verifier.verify(token)
    revoked.add("sid", "session-1")
    await refused(verifier, token, "revoked")


async def test_a_shared_secret_token_is_remembered_beside_a_jwks_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A service with both (HS256 for its peers, the JWKS for user tokens): tokens checked with
    # the secret are remembered although no JWKS was ever fetched.
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks_url="http://127.0.0.1:9/jwks.json", hs256_secret=SECRET
    )
    token = SigningKey.hs256(SECRET).sign(claims(sub="svc", client_id="svc"))
    assert (await verifier.verify(token)).sub == "svc"

    def no_second_check(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the signature was checked again")

    monkeypatch.setattr("medmesh.platform.tokens.jws.verify_decoded", no_second_check)
    assert (await verifier.verify(token)).sub == "svc"
    await verifier.aclose()
