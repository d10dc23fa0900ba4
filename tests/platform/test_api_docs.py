"""The API docs pages load everything from the service, and the OpenAPI document says which
operations need a token and where to get one."""

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic_settings import SettingsConfigDict
from starlette.responses import JSONResponse, Response

from medmesh.platform.api_docs import token_required
from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.testing import app_client
from medmesh.platform.tokens import CurrentPrincipal, Principal, RequireScopes
from medmesh.platform.web import DOCS_CSP, direct

ISSUER = "https://auth.hospital.example:8443"
OPENAPI_DIR = Path(__file__).parents[2] / "docs" / "openapi"

Admin = Annotated[Principal, Depends(RequireScopes("demo:admin"))]
Reader = Annotated[Principal, Depends(RequireScopes("demo:read", "demo:admin", any_of=True))]


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


def demo_app(tmp_path: Path) -> FastAPI:
    router = APIRouter()

    @router.get("/public")
    async def public() -> dict[str, str]:
        return {}

    @router.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.sub}

    @router.delete("/things/{thing_id}")
    async def delete_thing(thing_id: str, _: Admin) -> None:
        return None

    @router.get("/things")
    async def list_things(_: Reader) -> list[str]:
        return []

    @router.post("/fast", openapi_extra=token_required())
    @direct
    async def fast(request: Request) -> Response:
        return JSONResponse({})

    guarded = APIRouter(prefix="/guarded", dependencies=[Depends(RequireScopes("demo:admin"))])

    @guarded.get("/status")
    async def status() -> dict[str, str]:
        return {}

    return create_service_app(
        DemoSettings(database_url=f"sqlite+medmesh:///{tmp_path / 'demo.db'}", issuer=ISSUER),
        title="demo",
        version="0",
        description="demo",
        routers=[router, guarded],
        verify_tokens=False,
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(demo_app(tmp_path)) as client:
        yield client


def references(page: str) -> set[str]:
    """Every URL the page loads (src, href, spec-url)."""
    return set(re.findall(r'(?:src|href|spec-url)="([^"]*)"', page))


def directives(csp: str) -> dict[str, list[str]]:
    return {
        name: sources
        for name, *sources in (part.split() for part in csp.split(";") if part.strip())
    }


def inline_script_hashes(page: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    ]


async def test_swagger_ui_loads_its_files_from_the_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert references(response.text) == {
        "/docs/static/swagger-ui.css",
        "/docs/static/favicon.png",
        "/docs/static/swagger-ui-bundle.js",
    }
    assert "url: '/openapi.json'" in response.text
    assert "https://" not in response.text
    assert "http://" not in response.text


async def test_redoc_loads_its_files_from_the_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/redoc")

    assert response.status_code == 200
    assert references(response.text) == {
        "/openapi.json",
        "/docs/static/favicon.png",
        "/docs/static/redoc.standalone.js",
    }
    assert "https://" not in response.text
    assert "http://" not in response.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/docs/static/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("/docs/static/swagger-ui.css", "text/css; charset=utf-8"),
        ("/docs/static/redoc.standalone.js", "text/javascript; charset=utf-8"),
        ("/docs/static/favicon.png", "image/png"),
    ],
)
async def test_the_pages_files_are_served_and_revalidated(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    again = await client.get(path, headers={"if-none-match": response.headers["etag"]})

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.content) > 1000
    assert again.status_code == 304


async def test_no_other_file_is_served_under_the_static_path(client: httpx.AsyncClient) -> None:
    listing = await client.get("/docs/static/")
    outside = await client.get("/docs/static/../core.py")
    missing = await client.get("/docs/static/index.html")

    assert listing.status_code == 404
    assert outside.status_code == 404
    assert missing.status_code == 404


async def test_swagger_ui_csp_allows_only_the_service_and_its_own_inline_script(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs")
    csp = directives(response.headers["content-security-policy"])

    assert csp == {
        "default-src": ["'self'"],
        "script-src": ["'self'", *inline_script_hashes(response.text)],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        # Authorize posts the client's credentials to the issuer's token endpoint.
        "connect-src": ["'self'", ISSUER],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    assert len(csp["script-src"]) == 2
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


async def test_redoc_csp_names_no_other_host(client: httpx.AsyncClient) -> None:
    response = await client.get("/redoc")

    assert response.headers["content-security-policy"] == DOCS_CSP.decode()
    assert not re.search(r"https?:|\.(net|com|org)\b", DOCS_CSP.decode())


async def test_openapi_declares_client_credentials_and_bearer(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    assert document["components"]["securitySchemes"] == {
        "oauth2": {
            "type": "oauth2",
            "description": "A token of the auth-service for a client (client_credentials). "
            "Ticking no scope asks for every scope the client is allowed.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": f"{ISSUER}/oauth/token",
                    "scopes": {
                        "demo:admin": "operations that need demo:admin",
                        "demo:read": "operations that need demo:read",
                    },
                }
            },
        },
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token of the auth-service, pasted as it is.",
        },
    }


async def test_operations_that_verify_a_token_require_the_schemes(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert "security" not in paths["/public"]["get"]
    assert "security" not in paths["/healthz"]["get"]
    assert paths["/me"]["get"]["security"] == [{"oauth2": []}, {"bearer": []}]
    assert paths["/things/{thing_id}"]["delete"]["security"] == [
        {"oauth2": ["demo:admin"]},
        {"bearer": []},
    ]
    assert paths["/things"]["get"]["security"] == [
        {"oauth2": ["demo:read"]},
        {"oauth2": ["demo:admin"]},
        {"bearer": []},
    ]
    assert paths["/guarded/status"]["get"]["security"] == [
        {"oauth2": ["demo:admin"]},
        {"bearer": []},
    ]
    assert paths["/fast"]["post"]["security"] == [{"oauth2": []}, {"bearer": []}]
    assert "/docs" not in paths
    assert "/redoc" not in paths


def operations(service: str) -> dict[tuple[str, str], dict[str, Any]]:
    document = json.loads((OPENAPI_DIR / f"{service}.json").read_text())
    return {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


@pytest.mark.parametrize(
    ("service", "public"),
    [
        (
            "auth",
            {
                ("POST", "/oauth/token"),
                ("POST", "/oauth/introspect"),
                ("POST", "/oauth/revoke"),
                ("GET", "/oauth/revocations"),
                ("GET", "/.well-known/jwks.json"),
                ("GET", "/.well-known/oauth-authorization-server"),
                ("GET", "/.well-known/openid-configuration"),
                ("GET", "/.well-known/smart-configuration"),
                # The sign-in pages: a person's browser, a session cookie and CSRF, no bearer.
                ("GET", "/oauth/authorize"),
                ("POST", "/oauth/authorize"),
                ("POST", "/oauth/authorize/login"),
                ("POST", "/oauth/authorize/consent"),
                ("POST", "/oauth/authorize/patient"),
                ("GET", "/oauth/apps"),
                ("POST", "/oauth/apps/login"),
                ("POST", "/oauth/apps/disconnect"),
                ("GET", "/oauth/logout"),
                ("POST", "/oauth/logout"),
            },
        ),
        (
            "phi",
            {("GET", "/fhir/metadata"), ("GET", "/fhir/.well-known/smart-configuration")},
        ),
        ("synthetic", set()),
    ],
)
def test_every_service_documents_which_operations_need_a_token(
    service: str, public: set[tuple[str, str]]
) -> None:
    found = operations(service)
    document = json.loads((OPENAPI_DIR / f"{service}.json").read_text())
    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    operational = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}

    assert {key for key, operation in found.items() if "security" not in operation} == (
        public | operational
    )
    assert flow["tokenUrl"] == "http://127.0.0.1:8001/oauth/token"
    for operation in found.values():
        if "security" in operation:
            assert operation["security"][-1] == {"bearer": []}
