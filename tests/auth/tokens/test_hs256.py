"""HS256 mode: tokens signed with a shared secret that resource servers verify."""

from __future__ import annotations

import pytest

from medmesh.platform.errors import MedmeshError
from medmesh.platform.tokens import TokenVerifier
from tests.auth.conftest import ISSUER, AuthFactory, bearer, header_of

SECRET = "an-hs256-shared-secret-of-32-bytes-or-more"


async def test_hs256_tokens_verify_with_the_shared_secret(auth_factory: AuthFactory) -> None:
    async with auth_factory(jwt_hs256_secret=SECRET) as auth:
        token = await auth.access_token(scope="system/Patient.rs")
        assert header_of(token)["alg"] == "HS256"
        verifier = TokenVerifier(ISSUER, "medmesh-phi", hs256_secret=SECRET)
        principal = await verifier.verify(token)
        assert principal.client_id == "demo-service"
        assert principal.has_scope("system/Patient.r")
        assert (await auth.introspect(token))["active"] is True

        wrong = TokenVerifier(ISSUER, "medmesh-phi", hs256_secret="x" * 40)
        with pytest.raises(MedmeshError) as refused:
            await wrong.verify(token)
        assert refused.value.code == "invalid_token"

        # The auth-service's own admin API accepts its HS256 tokens.
        login = await auth.login()
        assert header_of(login.json()["access_token"])["alg"] == "HS256"
        response = await auth.http.get("/admin/users", headers=bearer(login.json()["access_token"]))
        assert response.status_code == 200
