"""Direct routes answer exactly as the router would: body, errors, headers, metrics, OpenAPI."""

import importlib
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client.parser import text_string_to_metric_families
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.errors import BadRequest, render_oauth_error
from medmesh.platform.testing import app_client
from medmesh.platform.web import direct, direct_routes


class DirectSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DIRECTDEMO_", extra="ignore")
    service_name: ClassVar[str] = "directdemo"


def build(tmp_path: Path, *, mark: bool) -> FastAPI:
    router = APIRouter(prefix="/oauth")

    async def echo(request: Request) -> JSONResponse:
        """Echo the form's size; refuse an empty body."""
        body = await request.body()
        if not body:
            raise BadRequest("the body is empty", code="invalid_request")
        return JSONResponse({"bytes": len(body)})

    router.post("/echo", summary="Echo")(direct(echo) if mark else echo)
    return create_service_app(
        DirectSettings(database_url=f"sqlite+medmesh:///{tmp_path / 'd.db'}", max_body_bytes=64),
        title="direct",
        version="0",
        description="direct routes",
        routers=[router],
        error_renderers=[("/oauth", render_oauth_error)],
        verify_tokens=False,
    )


async def _calls(
    app: FastAPI,
) -> tuple[list[tuple[int, dict[str, object], dict[str, str]]], set[str]]:
    out = []
    async with app_client(app) as client:
        for body in (b"a=1", b"", b"x" * 100):
            response = await client.post("/oauth/echo", content=body)
            headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
            out.append((response.status_code, response.json(), headers))
        metrics = (await client.get("/metrics")).text
    return out, _routes(metrics)


def _routes(metrics: str) -> set[str]:
    """The route labels of the RED request counter."""
    return {
        sample.labels["route"]
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if family.name == "medmesh_http_requests" and "route" in sample.labels
    }


async def test_a_direct_route_answers_as_the_router_would(tmp_path: Path) -> None:
    routed = build(tmp_path / "r", mark=False)
    served = build(tmp_path / "d", mark=True)
    assert not direct_routes(routed)
    assert direct_routes(served).keys() == {("POST", "/oauth/echo")}

    expected, routes = await _calls(routed)
    assert [status for status, _, _ in expected] == [200, 400, 413]
    assert expected[1][1]["error"] == "invalid_request"
    # The oversized body is refused before any routing, by both.
    assert routes == {"/oauth/echo", "unmatched"}
    assert await _calls(served) == (expected, routes)
    assert served.openapi()["paths"] == routed.openapi()["paths"]


def test_a_direct_endpoint_takes_only_the_request() -> None:
    async def with_id(request: Request, item_id: str) -> JSONResponse:
        return JSONResponse({})

    with pytest.raises(TypeError, match="takes only the Request"):
        direct(with_id)  # type: ignore[type-var]


def _template_app(tmp_path: Path) -> FastAPI:
    router = APIRouter(prefix="/items")

    @router.get("/special/{name}", summary="Special")
    async def special(name: str) -> JSONResponse:
        return JSONResponse({"route": "special", "name": name})

    @router.get("/{kind}/{item_id:int}", summary="Item")
    @direct
    async def item(request: Request) -> JSONResponse:
        params = request.path_params
        return JSONResponse({"route": "item", "kind": params["kind"], "id": params["item_id"]})

    @router.get("/{kind}/{item_id}/raise", summary="Raise")
    @direct
    async def refuse(request: Request) -> JSONResponse:
        raise BadRequest("refused", code="invalid_request")

    return create_service_app(
        DirectSettings(database_url=f"sqlite+medmesh:///{tmp_path / 't.db'}"),
        title="templates",
        version="0",
        description="direct routes with parameters",
        routers=[router],
        error_renderers=[("/items", render_oauth_error)],
        verify_tokens=False,
    )


async def test_a_direct_route_with_parameters_keeps_the_routers_precedence(
    tmp_path: Path,
) -> None:
    app = _template_app(tmp_path)
    assert direct_routes(app).keys() == {
        ("GET", "/items/{kind}/{item_id:int}"),
        ("GET", "/items/{kind}/{item_id}/raise"),
    }
    async with app_client(app) as client:
        direct_answer = await client.get("/items/book/42")
        earlier_route = await client.get("/items/special/42")
        no_match = await client.get("/items/book/not-a-number")
        refused = await client.get("/items/book/1/raise")
        metrics = (await client.get("/metrics")).text

    # The convertor applies (an int, as the router would give it).
    assert direct_answer.json() == {"route": "item", "kind": "book", "id": 42}
    # A route registered before the template that matches wins, as in the router.
    assert earlier_route.json() == {"route": "special", "name": "42"}
    assert no_match.status_code == 404
    # Errors of a direct endpoint go through the app's handlers (OAuth rendering here).
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert {"/items/{kind}/{item_id:int}", "/items/special/{name}"} <= _routes(metrics)


def test_a_fixed_direct_path_claimed_by_an_earlier_route_is_refused(tmp_path: Path) -> None:
    router = APIRouter(prefix="/oauth")

    @router.post("/{anything}")
    async def catch_all(anything: str) -> JSONResponse:
        return JSONResponse({})

    @router.post("/token")
    @direct
    async def token(request: Request) -> JSONResponse:
        return JSONResponse({})

    with pytest.raises(TypeError, match="an earlier route answers it"):
        create_service_app(
            DirectSettings(database_url=f"sqlite+medmesh:///{tmp_path / 'f.db'}"),
            title="f",
            version="0",
            description="f",
            routers=[router],
            verify_tokens=False,
        )


def _guard() -> None:
    """A dependency that would refuse the request (a RequireScopes, say)."""


@pytest.mark.parametrize("level", ["route", "router", "app"])
def test_a_direct_route_under_declared_dependencies_is_refused(level: str) -> None:
    router = APIRouter(prefix="/fhir", dependencies=[Depends(_guard)] if level == "router" else [])

    @router.get("/{name}", dependencies=[Depends(_guard)] if level == "route" else [])
    @direct
    async def read(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = FastAPI(dependencies=[Depends(_guard)] if level == "app" else [])
    app.include_router(router)
    with pytest.raises(TypeError, match=r"/fhir/\{name\}: a direct route skips dependency solving"):
        direct_routes(app)


def test_a_direct_route_without_dependencies_is_accepted() -> None:
    router = APIRouter(prefix="/fhir")

    @router.get("/{name}")
    @direct
    async def read(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = FastAPI()
    app.include_router(router)
    assert direct_routes(app).keys() == {("GET", "/fhir/{name}")}


def test_a_fastapi_without_route_contexts_fails_the_import_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fastapi.routing

    import medmesh.platform.web.direct_routing as module

    monkeypatch.delattr(fastapi.routing, "iter_route_contexts")
    with pytest.raises(ImportError, match=r"need FastAPI >= 0\.137\.2"):
        importlib.reload(module)
    monkeypatch.undo()
    importlib.reload(module)
