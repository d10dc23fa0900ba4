"""RFC 8414 metadata, OIDC discovery and the JWKS; a JWT library verifies tokens from the JWKS."""

from __future__ import annotations

import jwt as pyjwt

from tests.auth.conftest import ISSUER, AuthHarness, header_of


async def test_oauth_authorization_server_metadata(auth: AuthHarness) -> None:
    response = await auth.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert meta["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert meta["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    }
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == [
        "RS384",
        "ES384",
        "RS256",
        "ES256",
    ]
    assert meta["registration_endpoint"] == f"{ISSUER}/oauth/register"
    assert {"auth:admin", "openid", "system/*.cruds"} <= set(meta["scopes_supported"])
    assert meta["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["end_session_endpoint"] == f"{ISSUER}/oauth/logout"


async def test_openid_configuration(auth: AuthHarness) -> None:
    meta = (await auth.http.get("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == ISSUER
    assert meta["userinfo_endpoint"] == f"{ISSUER}/oauth/userinfo"
    assert meta["subject_types_supported"] == ["public"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert {"sub", "iss", "aud", "exp", "iat", "fhirUser", "patient", "nonce", "at_hash"} <= set(
        meta["claims_supported"]
    )


async def test_jwks_publishes_the_active_key(auth: AuthHarness) -> None:
    response = await auth.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    keys = response.json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA"
    assert key["use"] == "sig"
    assert key["alg"] == "RS256"
    assert set(key) == {"kty", "kid", "use", "alg", "n", "e"}
    assert header_of(await auth.access_token())["kid"] == key["kid"]


async def test_pyjwt_verifies_a_token_with_only_the_published_jwks(auth: AuthHarness) -> None:
    token = await auth.access_token(audience="medmesh-phi")
    jwks = (await auth.http.get("/.well-known/jwks.json")).json()
    key_set = pyjwt.PyJWKSet.from_dict(jwks)
    signing_key = next(k for k in key_set.keys if k.key_id == header_of(token)["kid"])
    claims = pyjwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience="medmesh-phi",
        issuer=ISSUER,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    assert claims["client_id"] == "demo-service"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    try:
        pyjwt.decode(tampered, signing_key.key, algorithms=["RS256"], audience="medmesh-phi")
    except pyjwt.InvalidSignatureError:
        pass
    else:  # pragma: no cover
        raise AssertionError("PyJWT accepted a tampered token")


async def test_smart_configuration(auth: AuthHarness) -> None:
    response = await auth.http.get("/.well-known/smart-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["issuer"] == ISSUER
    assert config["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert config["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {
        "launch-ehr",
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "context-ehr-patient",
        "context-standalone-patient",
        "permission-v2",
        "permission-offline",
        "permission-online",
        "sso-openid-connect",
        "authorize-post",
    } <= set(config["capabilities"])
