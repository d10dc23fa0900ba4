"""medmesh's own compact JWS (``platform/tokens/jws.py``) against joserfc and PyJWT, in process.

Two operations, each for RS256 (RSA 2048) and ES256 (P-256):

- **first-sight verification**: a token the verifier has not seen — split and decode, look the key
  up by ``kid`` in the JWKS, check the signature, check the claims (``exp``, ``nbf``, ``iat``,
  ``iss``, ``aud``, ``sub``, scopes) and build the ``Principal``. medmesh's path is
  ``TokenVerifier.verify_cached`` (it never remembers a token). A library's path is what
  ``TokenVerifier`` would run if built on it: the library parses and checks the signature with the
  key it picks by ``kid``, and the same claims code builds the ``Principal`` (the library's own
  claim checks are switched off, so no claim is checked twice);
- **token issue**: one access token signed (header ``{alg, typ, kid}``, auth-service's claims).

Each round runs every implementation over the same batch of distinct tokens (or claims), in a
rotating order; the figure is the best round's CPU time of this process per token
(``time.process_time``: unlike wall time it does not grow when another process shares the core),
and tokens/s is its inverse. medmesh's own code is the control: every library row carries its
ratio to it, measured in the same run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwk as joserfc_jwk
from joserfc import jwt as joserfc_jwt

from medmesh.platform.tokens import Principal, SigningKey, TokenVerifier

ISSUER = "http://auth.bench"
AUDIENCE = "medmesh-phi"
ALGORITHMS = ("RS256", "ES256")
#: Tokens per batch: enough for a round of about 0.1-0.3 s on the reference VM.
BATCH = {("RS256", "verify"): 1500, ("ES256", "verify"): 800}
BATCH |= {("RS256", "sign"): 150, ("ES256", "sign"): 1500}


def access_claims(n: int) -> list[dict[str, Any]]:
    """``n`` distinct access-token claim sets as auth-service issues them."""
    now = int(time.time())
    return [
        {
            "iss": ISSUER,
            "sub": "demo-service",
            "aud": [AUDIENCE],
            "exp": now + 900,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "scope": "system/*.cruds",
            "client_id": "demo-service",
            "roles": [],
        }
        for _ in range(n)
    ]


@dataclass(frozen=True)
class Contender:
    """One implementation's issue and first-sight verification for one key."""

    name: str
    sign: Callable[[dict[str, Any]], str]
    verify: Callable[[str], Principal]


def contenders(key: SigningKey) -> list[Contender]:
    """medmesh, joserfc and PyJWT, each issuing with ``key`` and verifying against its JWKS."""
    jwks: Any = {"keys": [key.public_jwk()]}
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks=jwks)
    kid = key.kid
    private = serialization.load_pem_private_key(key.private_pem(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)

    # joserfc: a KeySet picks the key by kid; the claims go to the same Principal code.
    jose_keys = joserfc_jwk.KeySet.import_key_set(jwks)
    jose_private = joserfc_jwk.import_key(key.private_pem(), "RSA" if key.alg == "RS256" else "EC")
    jose_header = {"alg": key.alg, "kid": kid}

    def jose_sign(claims: dict[str, Any]) -> str:
        return joserfc_jwt.encode(jose_header, claims, jose_private, algorithms=[key.alg])

    def jose_verify(token: str) -> Principal:
        claims = joserfc_jwt.decode(token, jose_keys, algorithms=[key.alg]).claims
        return verifier._principal(claims)

    # PyJWT: the key by kid from the header (as PyJWKClient does), its claim checks off.
    py_keys = {jwk["kid"]: pyjwt.PyJWK.from_dict(jwk) for jwk in jwks["keys"]}
    py_headers = {"kid": kid}
    py_options: Any = {
        "verify_signature": True,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
    }

    def py_sign(claims: dict[str, Any]) -> str:
        return pyjwt.encode(claims, private, algorithm=key.alg, headers=py_headers)

    def py_verify(token: str) -> Principal:
        found = py_keys[pyjwt.get_unverified_header(token)["kid"]]
        claims = pyjwt.decode(token, found, algorithms=[key.alg], options=py_options)
        return verifier._principal(claims)

    return [
        Contender("medmesh", key.sign, verifier.verify_cached),
        Contender("joserfc", jose_sign, jose_verify),
        Contender("pyjwt", py_sign, py_verify),
    ]


def _cpu_seconds_per_item(run: Callable[[Any], object], items: Sequence[Any]) -> float:
    start = time.process_time()
    for item in items:
        run(item)
    return (time.process_time() - start) / len(items)


def measure(rounds: int = 5) -> dict[str, Any]:
    """Per algorithm and operation: µs and tokens/s of each implementation, ratios to medmesh."""
    report: dict[str, Any] = {}
    for alg in ALGORITHMS:
        key = SigningKey.generate(alg)
        racers = contenders(key)
        tokens = [key.sign(c) for c in access_claims(BATCH[(alg, "verify")])]
        claims = access_claims(BATCH[(alg, "sign")])
        for racer in racers:  # every implementation accepts every other's tokens
            assert racer.verify(racer.sign(claims[0])).sub == "demo-service", racer.name
            assert all(r.verify(racer.sign(claims[0])) for r in racers), racer.name
        for op, items in (("verify", tokens), ("sign", claims)):
            best = {racer.name: float("inf") for racer in racers}
            for round_ in range(rounds):
                shift = round_ % len(racers)
                for racer in racers[shift:] + racers[:shift]:
                    run = racer.verify if op == "verify" else racer.sign
                    best[racer.name] = min(best[racer.name], _cpu_seconds_per_item(run, items))
            own = best["medmesh"]
            for name, seconds in best.items():
                row = f"jws_{op}_{alg.lower()}_{name}"
                report[f"{row}_us"] = round(seconds * 1e6, 1)
                report[f"{row}_tokens_per_s"] = round(1 / seconds)
                if name != "medmesh":
                    report[f"{row}_ratio_to_medmesh"] = round(own / seconds, 3)
    return report


def within(report: dict[str, Any], library: str, tolerance: float = 0.10) -> bool:
    """True when ``library`` reaches (1 - tolerance) of medmesh's tokens/s on every row."""
    ratios = [v for k, v in report.items() if k.endswith(f"_{library}_ratio_to_medmesh")]
    return bool(ratios) and min(ratios) >= 1 - tolerance
