import re
import shutil
from pathlib import Path
from typing import Annotated, ClassVar

import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import Database, is_sqlite
from medmesh.platform.errors import BadRequest, Conflict, render_oauth_error
from medmesh.platform.testing import (
    LogLines,
    app_client,
    drop_postgres_database,
    test_environment,
)

PROBLEM = "application/problem+json"


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


class PatientIn(BaseModel):
    ssn: Annotated[str, Field(pattern=r"^\d{9}$")]
    age: int


def demo_router() -> APIRouter:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @router.post("/patients", status_code=201)
    async def create_patient(patient: PatientIn) -> dict[str, int]:
        return {"age": patient.age}

    @router.get("/conflict")
    async def conflict() -> None:
        raise Conflict("the item already exists")

    @router.get("/boom")
    async def boom() -> None:
        raise ValueError("patient Jane Doe 123-45-6789")

    @router.post("/oauth/token")
    async def token() -> None:
        raise BadRequest("grant_type is missing", code="invalid_request")

    return router


def demo_app(database_url: str) -> FastAPI:
    settings = DemoSettings(database_url=database_url)
    return create_service_app(
        settings,
        title="demo",
        version="0",
        description="demo service",
        routers=[demo_router()],
        error_renderers=[("/oauth", render_oauth_error)],
        verify_tokens=False,
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+medmesh:///{tmp_path / 'demo.db'}"


async def test_healthz(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_answers_200_when_the_database_answers(database_url: str) -> None:
    async with app_client(demo_app(database_url)) as client:
        response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_answers_503_when_the_database_is_gone(
    database_url: str, tmp_path: Path
) -> None:
    if is_sqlite(database_url):
        # a database in a folder that is removed while the service runs
        database_url = f"sqlite+medmesh:///{tmp_path / 'gone' / 'demo.db'}"
    app = demo_app(database_url)
    async with app_client(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        database: Database = app.state.database
        await database.dispose()
        if is_sqlite(database_url):
            shutil.rmtree(tmp_path / "gone")
        else:
            await drop_postgres_database(test_environment().postgres_url, database_url)

        response = await client.get("/readyz")
        health = await client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["problems"][0].startswith("database: ")
    assert health.status_code == 200


async def test_readyz_answers_503_while_draining(sqlite_url: str) -> None:
    app = demo_app(sqlite_url)
    async with app_client(app) as client:
        app.state.draining = True
        response = await client.get("/readyz")
        health = await client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "draining"}
    assert health.status_code == 200


async def test_readiness_checks_of_the_service_are_run(sqlite_url: str) -> None:
    async def peer_answers(app: FastAPI) -> None:
        raise ConnectionError("peer down")

    app = create_service_app(
        DemoSettings(database_url=sqlite_url),
        title="demo",
        version="0",
        description="demo",
        routers=[],
        readiness_checks=[peer_answers],
        verify_tokens=False,
    )
    async with app_client(app) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["problems"] == ["peer_answers: ConnectionError"]


async def test_metrics_are_served_as_prometheus_text(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        await client.get("/healthz")
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "medmesh_http_requests_total" in response.text


async def test_request_id_is_generated(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        first = await client.get("/healthz")
        second = await client.get("/healthz")

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_request_id_is_echoed(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "req-42.abc_DEF"})

    assert response.headers["x-request-id"] == "req-42.abc_DEF"


@pytest.mark.parametrize(
    "unsafe", ["a" * 65, "<script>alert(1)</script>", "id with spaces", "a\tb", "x;rm -rf"]
)
async def test_unsafe_request_id_is_replaced(sqlite_url: str, unsafe: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": unsafe})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


async def test_medmesh_error_is_rendered_as_problem_json(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.get("/conflict")

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "code": "conflict",
        "detail": "the item already exists",
    }


async def test_validation_error_names_the_field_but_not_the_value(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.post("/patients", json={"ssn": "123-45-6789", "age": "old"})

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "invalid_request"
    assert "ssn" in body["detail"]
    assert "age" in body["detail"]
    assert "123-45-6789" not in response.text
    assert "old" not in response.text.replace("should", "")


async def test_malformed_json_is_a_400_problem(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.post(
            "/patients",
            content=b'{"ssn": "123-45-6789", ',
            headers={"content-type": "application/json"},
        )

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert "123-45-6789" not in response.text


async def test_unknown_route_is_a_404_problem(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.get("/no/such/route")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "not_found"


async def test_wrong_method_is_a_405_problem(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        response = await client.delete("/healthz")

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"


async def test_unexpected_exception_is_a_500_without_its_message(
    sqlite_url: str, log_lines: LogLines
) -> None:
    async with app_client(demo_app(sqlite_url), raise_app_exceptions=True) as client:
        response = await client.get("/boom", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "internal error"
    assert response.json()["code"] == "internal_error"
    assert "Jane" not in response.text
    [line] = log_lines.events("unhandled_error")
    assert line["error_type"] == "ValueError"
    assert line["request_id"] == "boom-1"
    assert line["level"] == "error"
    assert "Jane" not in log_lines.text
    assert "123-45-6789" not in log_lines.text


async def test_errors_are_rendered_by_the_renderer_of_the_path_prefix(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        oauth = await client.post("/oauth/token")
        oauth_404 = await client.get("/oauth/nothing-here")
        other = await client.get("/items/1/nothing-here")

    assert oauth.status_code == 400
    assert oauth.headers["content-type"] == "application/json"
    assert oauth.json() == {
        "error": "invalid_request",
        "error_description": "grant_type is missing",
    }
    assert oauth_404.json()["error"] == "not_found"
    assert other.headers["content-type"] == PROBLEM


async def test_openapi_and_docs_are_served(sqlite_url: str) -> None:
    async with app_client(demo_app(sqlite_url)) as client:
        openapi = await client.get("/openapi.json")
        docs = await client.get("/docs")

    assert openapi.status_code == 200
    assert "/items/{item_id}" in openapi.json()["paths"]
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
