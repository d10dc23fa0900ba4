"""CrossOriginMiddleware: the preflight and the response of a listed origin on a listed path;
everything else passes through untouched. The origins setting in its canonical form."""

from collections.abc import AsyncIterator
from typing import ClassVar

import httpx
import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from medmesh.platform.config import LOCAL_ORIGINS, ServiceSettings, canonical_origin
from medmesh.platform.web import CrossOriginMiddleware

PAGE = "http://127.0.0.1:8002"
PREFLIGHT = {
    "origin": PAGE,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type,x-requested-with",
}


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


async def token(request: Request) -> JSONResponse:
    if request.method == "OPTIONS":
        return JSONResponse({"error": "method_not_allowed"}, status_code=405)
    status = 200 if request.headers.get("authorization") else 401
    return JSONResponse({"seen": request.method}, status_code=status, headers={"vary": "Accept"})


async def other(request: Request) -> PlainTextResponse:
    return PlainTextResponse("other")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST", "OPTIONS"]),
            Route("/other", other, methods=["POST", "OPTIONS"]),
        ]
    )
    wrapped = CrossOriginMiddleware(
        app, origins=[PAGE, "https://docs.example.org"], paths={"/oauth/token"}
    )
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
        yield http


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_a_listed_origin_gets_its_preflight_answered(client: httpx.AsyncClient) -> None:
    response = await client.options("/oauth/token", headers=PREFLIGHT)

    assert response.status_code == 204
    assert response.content == b""
    assert dict(response.headers) == {
        "access-control-allow-origin": PAGE,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "accept, authorization, content-type, x-requested-with",
        "access-control-max-age": "600",
        "vary": "Origin",
        "cache-control": "no-store",
    }


async def test_a_listed_origin_reads_the_answer_and_its_errors(client: httpx.AsyncClient) -> None:
    issued = await client.post("/oauth/token", headers={"origin": PAGE, "authorization": "x"})
    refused = await client.post("/oauth/token", headers={"origin": PAGE})

    assert issued.status_code == 200
    assert issued.json() == {"seen": "POST"}
    assert cors_headers(issued) == {"access-control-allow-origin": PAGE}
    assert issued.headers["vary"] == "Accept, Origin"
    assert refused.status_code == 401
    assert cors_headers(refused) == {"access-control-allow-origin": PAGE}
    assert "access-control-allow-credentials" not in refused.headers


@pytest.mark.parametrize(
    "headers",
    [
        {**PREFLIGHT, "origin": "https://elsewhere.example"},
        {**PREFLIGHT, "origin": "null"},
        {**PREFLIGHT, "access-control-request-method": "PUT"},
        {**PREFLIGHT, "access-control-request-headers": "authorization, x-forwarded-for"},
    ],
    ids=["other origin", "opaque origin", "other method", "other header"],
)
async def test_any_other_preflight_gets_the_apps_own_answer(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.options("/oauth/token", headers=headers)

    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed"}
    assert cors_headers(response) == {}


async def test_other_origins_and_paths_pass_through(client: httpx.AsyncClient) -> None:
    elsewhere = await client.post(
        "/oauth/token", headers={"origin": "https://elsewhere.example", "authorization": "x"}
    )
    no_origin = await client.post("/oauth/token", headers={"authorization": "x"})
    other_path = await client.post("/other", headers={"origin": PAGE})
    other_preflight = await client.options("/other", headers=PREFLIGHT)

    for response in (elsewhere, no_origin):
        assert response.status_code == 200
        assert cors_headers(response) == {}
        assert response.headers["vary"] == "Accept"
    assert other_path.text == "other"
    assert cors_headers(other_path) == {}
    assert other_preflight.status_code == 200
    assert cors_headers(other_preflight) == {}


async def test_an_origin_matches_whatever_case_the_browser_sent(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/oauth/token", headers={**PREFLIGHT, "origin": "HTTPS://Docs.Example.ORG"}
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://docs.example.org"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("http://127.0.0.1:8002", "http://127.0.0.1:8002"),
        ("HTTP://Docs.Example.ORG/", "http://docs.example.org"),
        ("http://docs.example.org:80", "http://docs.example.org"),
        ("https://docs.example.org:443", "https://docs.example.org"),
        ("https://docs.example.org:8443", "https://docs.example.org:8443"),
        (" http://[::1]:8002 ", "http://[::1]:8002"),
    ],
)
def test_an_origin_is_kept_in_the_form_a_browser_sends(given: str, canonical: str) -> None:
    assert canonical_origin(given) == canonical


@pytest.mark.parametrize(
    "given",
    [
        "*",
        "null",
        "127.0.0.1:8002",
        "ftp://docs.example.org",
        "http://docs.example.org/docs",
        "http://docs.example.org?x=1",
        "http://user@docs.example.org",
    ],
)
def test_anything_but_an_origin_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        canonical_origin(given)


def test_the_setting_defaults_to_the_urls_medmesh_up_serves() -> None:
    assert DemoSettings().cors_origins == LOCAL_ORIGINS
    assert LOCAL_ORIGINS == [
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
        "http://127.0.0.1:8003",
        "http://127.0.0.1:8004",
        "http://127.0.0.1:8005",
    ]


def test_the_setting_is_read_as_a_json_list_and_kept_canonical(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDMESH_CORS_ORIGINS", '["HTTPS://Phi.Example.ORG:443/"]')
    assert DemoSettings().cors_origins == ["https://phi.example.org"]

    monkeypatch.setenv("MEDMESH_DEMO_CORS_ORIGINS", '["*"]')
    with pytest.raises(ValidationError, match="is not an http or https origin"):
        DemoSettings()
