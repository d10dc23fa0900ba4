import asyncio
from pathlib import Path
from typing import ClassVar

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.metrics import ServiceMetrics
from medmesh.platform.testing import app_client


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


def demo_app(tmp_path: Path, gate: asyncio.Event | None = None) -> FastAPI:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        assert gate is not None
        await gate.wait()
        return {}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return create_service_app(
        DemoSettings(database_url=f"sqlite+medmesh:///{tmp_path / 'demo.db'}"),
        title="demo",
        version="0",
        description="demo",
        routers=[router],
        verify_tokens=False,
    )


async def scrape(client: httpx.AsyncClient) -> tuple[str, list[Sample]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples = [s for f in text_string_to_metric_families(response.text) for s in f.samples]
    return response.text, samples


def value(samples: list[Sample], name: str, **labels: str) -> float:
    matching = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert matching, f"no {name} sample with {labels}"
    return sum(matching)


def in_progress(samples: list[Sample]) -> float:
    name = "medmesh_http_requests_in_progress"
    return sum(s.value for s in samples if s.name == name and s.labels.get("method") == "GET")


async def test_red_metrics_are_labelled_by_route_template(tmp_path: Path) -> None:
    async with app_client(demo_app(tmp_path)) as client:
        for _ in range(3):
            assert (await client.get("/items/123-45-6789")).status_code == 200
        text, samples = await scrape(client)

    labels = {"service": "demo", "method": "GET", "route": "/items/{item_id}"}
    assert value(samples, "medmesh_http_requests_total", status="200", **labels) == 3
    assert value(samples, "medmesh_http_request_duration_seconds_count", **labels) == 3
    assert value(samples, "medmesh_http_response_size_bytes_count", **labels) == 3
    assert value(samples, "medmesh_http_response_size_bytes_sum", **labels) > 0
    assert "123-45-6789" not in text


async def test_unmatched_routes_share_one_label(tmp_path: Path) -> None:
    async with app_client(demo_app(tmp_path)) as client:
        await client.get("/patients/jane-doe")
        await client.get("/patients/john-roe")
        text, samples = await scrape(client)

    assert value(samples, "medmesh_http_requests_total", route="unmatched", status="404") == 2
    assert "jane-doe" not in text
    assert "john-roe" not in text


async def test_server_errors_are_counted_as_500(tmp_path: Path) -> None:
    async with app_client(demo_app(tmp_path)) as client:
        assert (await client.get("/boom")).status_code == 500
        _, samples = await scrape(client)

    assert value(samples, "medmesh_http_requests_total", route="/boom", status="500") == 1


async def test_in_progress_gauge_rises_and_returns_to_zero(tmp_path: Path) -> None:
    gate = asyncio.Event()
    async with app_client(demo_app(tmp_path, gate)) as client:
        slow = asyncio.create_task(client.get("/slow"))
        for _ in range(100):
            _, samples = await scrape(client)
            if in_progress(samples) >= 1:
                break
            await asyncio.sleep(0.01)
        during = in_progress(samples)
        gate.set()
        assert (await slow).status_code == 200
        _, samples = await scrape(client)
        after = value(samples, "medmesh_http_requests_in_progress", method="GET")
        assert after == in_progress(samples)

    assert during == 1
    assert after == 0


async def test_metrics_endpoint_itself_is_not_counted(tmp_path: Path) -> None:
    async with app_client(demo_app(tmp_path)) as client:
        await scrape(client)
        _, samples = await scrape(client)

    assert not [s for s in samples if s.labels.get("route") == "/metrics"]


def test_each_app_has_its_own_registry_with_domain_metrics() -> None:
    first, second = ServiceMetrics("one"), ServiceMetrics("two")
    issued = first.counter("medmesh_one_tokens_issued_total", "Tokens issued.", ("grant",))
    issued.labels("client_credentials").inc(2)
    first.gauge("medmesh_one_queue_depth", "Queue depth.").set(5)
    first.histogram("medmesh_one_work_seconds", "Work.", buckets=(0.1, 1.0)).observe(0.5)

    samples = [
        s for f in text_string_to_metric_families(first.render().decode()) for s in f.samples
    ]
    assert value(samples, "medmesh_one_tokens_issued_total", grant="client_credentials") == 2
    assert value(samples, "medmesh_one_queue_depth") == 5
    assert value(samples, "medmesh_one_work_seconds_bucket", le="1.0") == 1
    assert b"medmesh_one_tokens_issued_total" not in second.render()


def test_http_metrics_expose_what_prometheus_types_would() -> None:
    metrics = ServiceMetrics("demo")
    for seconds, status in [(0.001, 200), (0.0011, 200), (7.0, 503), (60.0, 200)]:
        metrics.http.started("GET")
        metrics.http.finished("GET", "/items/{item_id}", status, seconds, 10)
    metrics.http.started("POST")
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}

    assert families["medmesh_http_requests"].type == "counter"
    assert families["medmesh_http_request_duration_seconds"].type == "histogram"
    assert families["medmesh_http_response_size_bytes"].type == "summary"
    samples = [s for f in families.values() for s in f.samples]
    route = {"service": "demo", "method": "GET", "route": "/items/{item_id}"}
    assert value(samples, "medmesh_http_requests_total", status="200", **route) == 3
    assert value(samples, "medmesh_http_requests_total", status="503", **route) == 1
    bucket = "medmesh_http_request_duration_seconds_bucket"
    # Buckets are cumulative and inclusive of their bound ("le").
    assert value(samples, bucket, le="0.001", **route) == 1
    assert value(samples, bucket, le="0.0025", **route) == 2
    assert value(samples, bucket, le="10.0", **route) == 3
    assert value(samples, bucket, le="+Inf", **route) == 4
    assert value(samples, "medmesh_http_request_duration_seconds_count", **route) == 4
    assert value(samples, "medmesh_http_request_duration_seconds_sum", **route) == 67.0021
    assert value(samples, "medmesh_http_response_size_bytes_sum", **route) == 40
    assert value(samples, "medmesh_http_requests_in_progress", method="GET") == 0
    assert value(samples, "medmesh_http_requests_in_progress", method="POST") == 1
