"""The token endpoint answers CORS for the /docs pages of the deployment's services (their
Swagger UI asks it for a token from another origin), and for no other origin or path."""

import httpx
import pytest

from medmesh.auth.bootstrap import DEMO_SERVICE_CLIENT_ID
from tests.auth.conftest import AuthFactory, AuthHarness

PHI_DOCS = "http://127.0.0.1:8002"
SWAGGER_PREFLIGHT = {
    "origin": PHI_DOCS,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type,x-requested-with",
}


def cors_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("access-control-")}


async def test_phis_docs_page_obtains_a_token_across_origins(auth: AuthHarness) -> None:
    preflight = await auth.http.options("/oauth/token", headers=SWAGGER_PREFLIGHT)
    issued = await auth.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={
            **auth.basic(DEMO_SERVICE_CLIENT_ID),
            "origin": PHI_DOCS,
            "x-requested-with": "XMLHttpRequest",
        },
    )

    assert preflight.status_code == 204
    assert cors_headers(preflight.headers) == {
        "access-control-allow-origin": PHI_DOCS,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "accept, authorization, content-type, x-requested-with",
        "access-control-max-age": "600",
    }
    assert issued.status_code == 200
    assert issued.json()["token_type"] == "Bearer"
    assert cors_headers(issued.headers) == {"access-control-allow-origin": PHI_DOCS}
    assert issued.headers["vary"] == "Origin"


async def test_the_page_reads_a_refusal_in_oauth_form(auth: AuthHarness) -> None:
    refused = await auth.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"origin": PHI_DOCS}
    )

    assert refused.status_code == 401
    assert refused.json() == {
        "error": "invalid_client",
        "error_description": "client authentication is required",
    }
    assert cors_headers(refused.headers) == {"access-control-allow-origin": PHI_DOCS}


@pytest.mark.parametrize(
    ("path", "origin"),
    [
        ("/oauth/token", "https://elsewhere.example"),
        ("/oauth/introspect", PHI_DOCS),
        ("/oauth/revoke", PHI_DOCS),
    ],
)
async def test_no_other_origin_or_endpoint_takes_part(
    auth: AuthHarness, path: str, origin: str
) -> None:
    preflight = await auth.http.options(path, headers={**SWAGGER_PREFLIGHT, "origin": origin})

    assert preflight.status_code == 405
    assert preflight.json() == {
        "error": "method_not_allowed",
        "error_description": "Method Not Allowed",
    }
    assert cors_headers(preflight.headers) == {}


async def test_the_deployment_names_its_own_origins(auth_factory: AuthFactory) -> None:
    async with auth_factory(cors_origins=["https://phi.example.org"]) as auth:
        listed = await auth.http.options(
            "/oauth/token", headers={**SWAGGER_PREFLIGHT, "origin": "https://phi.example.org"}
        )
        default_gone = await auth.http.options("/oauth/token", headers=SWAGGER_PREFLIGHT)

    assert listed.status_code == 204
    assert listed.headers["access-control-allow-origin"] == "https://phi.example.org"
    assert default_gone.status_code == 405
    assert cors_headers(default_gone.headers) == {}
