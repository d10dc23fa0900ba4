"""The phi loader against a real phi-service app, served over HTTP on a local port.

A small proxy stands between them in the tests of failures: it loses answers of requests phi
did commit, answers 429, or mangles one patient, the way a network and a busy server do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medmesh.platform.testing import TokenFactory, serve_app
from medmesh.synthetic.engine import GenerationOptions, PatientGenerator
from medmesh.synthetic.loading import (
    LoadCancelled,
    LoadRefused,
    LoadSettings,
    PhiTarget,
    load_patients,
)

FAST = LoadSettings(batch_size=3, concurrency=2, retries=4, backoff_seconds=0.01)


def options(size: int, seed: int = 21, state: str | None = "VT") -> GenerationOptions:
    """A run with short histories; one state keeps its directory small (16 resources)."""
    return GenerationOptions(
        seed=seed, size=size, reference_date=date(2025, 3, 1), years_of_history=2, state=state
    )


def target(url: str, tokens: TokenFactory, scope: str = "system/*.crus") -> PhiTarget:
    token = tokens.token(
        scope, audience="medmesh-phi", sub="svc-synthetic", client_id="svc-synthetic"
    )
    return PhiTarget(fhir_url=url + "/fhir", access_token=token)


async def count(url: str, tokens: TokenFactory, resource: str, **params: str) -> int:
    headers = {"Authorization": "Bearer " + tokens.token("system/*.rs", audience="medmesh-phi")}
    async with httpx.AsyncClient(base_url=url + "/fhir", headers=headers, timeout=30) as fhir:
        answer = await fhir.get(resource, params={**params, "_summary": "count"})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def generated_counts(run: GenerationOptions) -> tuple[int, dict[str, int]]:
    """Resources per type of the run's patients, and how many Observations patient 0 has."""
    generator = PatientGenerator(run)
    counts: dict[str, int] = {}
    for index in range(run.size):
        for resource in generator.patient(index).resources:
            counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    first = generator.patient(0).resources
    return sum(r["resourceType"] == "Observation" for r in first), counts


def mrn_of(run: GenerationOptions, index: int) -> str:
    patient = PatientGenerator(run).patient(index).resources[0]
    mrn = next(i for i in patient["identifier"] if i["type"]["coding"][0]["code"] == "MR")
    return f"{mrn['system']}|{mrn['value']}"


@pytest.mark.postgres
async def test_every_patient_is_stored_and_a_second_load_adds_nothing(
    served_phi_url: str, token_factory: TokenFactory
) -> None:
    run = options(7, state=None)  # the whole country: 816 directory resources
    progress: list[int] = []
    summary = await load_patients(
        target(served_phi_url, token_factory), run, settings=FAST, on_progress=progress.append
    )
    observations_of_first, counts = generated_counts(run)
    assert summary.patients == 7
    assert summary.patients_loaded == 7
    assert summary.patients_failed == 0
    assert summary.resources_loaded == sum(counts.values())
    assert summary.directory_resources > 0
    assert progress[-1] == 7
    assert progress == sorted(progress)
    assert await count(served_phi_url, token_factory, "Patient") == 7
    assert await count(served_phi_url, token_factory, "Encounter") == counts["Encounter"]
    first = await _patient_id(served_phi_url, token_factory, mrn_of(run, 0))
    assert (
        await count(served_phi_url, token_factory, "Observation", subject=f"Patient/{first}")
        == observations_of_first
    )

    again = await load_patients(
        target(served_phi_url, token_factory), run, settings=FAST, skip_existing=True
    )
    assert again.patients_loaded == 0
    assert again.patients_already_present == 7
    assert again.directory_resources == 0
    assert again.directory_resources_present == summary.directory_resources
    assert await count(served_phi_url, token_factory, "Patient") == 7


async def _patient_id(url: str, tokens: TokenFactory, mrn: str) -> str:
    headers = {"Authorization": "Bearer " + tokens.token("system/*.rs", audience="medmesh-phi")}
    async with httpx.AsyncClient(base_url=url + "/fhir", headers=headers, timeout=30) as fhir:
        found = (await fhir.get("Patient", params={"identifier": mrn})).json()
    assert found["total"] == 1
    return str(found["entry"][0]["resource"]["id"])


Handler = Callable[[Request, int, Callable[[], Awaitable[httpx.Response]]], Awaitable[Response]]


@asynccontextmanager
async def proxy(upstream: str, handle: Handler) -> AsyncIterator[str]:
    """A proxy to ``upstream`` whose answers to POSTs ``handle`` decides (the n-th POST)."""
    posts = 0

    async def forward(request: Request) -> Response:
        nonlocal posts
        body = await request.body()

        async def send(content: bytes = body) -> httpx.Response:
            async with httpx.AsyncClient(timeout=60) as http:
                return await http.request(
                    request.method,
                    upstream + request.url.path,
                    params=request.query_params,
                    content=content,
                    headers={
                        k: v
                        for k, v in request.headers.items()
                        if k not in ("host", "content-length")
                    },
                )

        if request.method == "POST":
            posts += 1
            return await handle(request, posts, send)
        answer = await send()
        return Response(
            answer.content, answer.status_code, media_type=answer.headers.get("content-type")
        )

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])
    async with serve_app(app) as url:
        yield url


def relay(answer: httpx.Response) -> Response:
    return Response(
        answer.content, answer.status_code, media_type=answer.headers.get("content-type")
    )


@pytest.mark.postgres
async def test_a_retry_after_a_lost_answer_does_not_duplicate(
    served_phi_url: str, token_factory: TokenFactory
) -> None:
    async def lose_answers(request: Request, n: int, send: Any) -> Response:
        answer = await send()  # phi stores the Bundle ...
        if n in (2, 3):  # ... but the loader never hears it
            return Response(b"upstream timed out", 502)
        return relay(answer)

    async with proxy(served_phi_url, lose_answers) as url:
        summary = await load_patients(target(url, token_factory), options(9), settings=FAST)
    assert summary.retries >= 2
    assert summary.patients_failed == 0
    assert summary.patients_done == 9
    assert summary.patients_already_present >= 3
    assert await count(served_phi_url, token_factory, "Patient") == 9


@pytest.mark.postgres
async def test_429_is_retried_after_retry_after(
    served_phi_url: str, token_factory: TokenFactory
) -> None:
    async def busy(request: Request, n: int, send: Any) -> Response:
        if n in (2, 4):
            return Response(b"", 429, headers={"Retry-After": "0"})
        return relay(await send())

    async with proxy(served_phi_url, busy) as url:
        summary = await load_patients(target(url, token_factory), options(6), settings=FAST)
    assert summary.retries == 2
    assert summary.patients_already_present == 0
    assert summary.patients_loaded == 6
    assert await count(served_phi_url, token_factory, "Patient") == 6


@pytest.mark.postgres
async def test_a_patient_phi_refuses_costs_only_itself(
    served_phi_url: str, token_factory: TokenFactory
) -> None:
    run = options(6)
    bad_mrn = mrn_of(run, 4).split("|")[1]

    async def mangle(request: Request, n: int, send: Any) -> Response:
        body = await request.body()
        if bad_mrn.encode() in body:
            body = body.replace(b'"gender":"', b'"gender":"not-a-gender-', 1)
        return relay(await send(body))

    async with proxy(served_phi_url, mangle) as url:
        summary = await load_patients(target(url, token_factory), run, settings=FAST)
    assert summary.patients_loaded == 5
    assert summary.patients_failed == 1
    (failure,) = summary.failures
    assert (failure.first, failure.last) == (4, 4)
    assert failure.status == 400
    assert "1 of 6 patients were not stored (first: patients 4-4" in summary.describe_failures()
    assert await count(served_phi_url, token_factory, "Patient") == 5


async def test_a_token_without_the_rights_is_refused_up_front(
    served_phi_url: str, token_factory: TokenFactory
) -> None:
    with pytest.raises(LoadRefused) as refused:
        await load_patients(
            target(served_phi_url, token_factory, "system/Observation.rs"),
            options(2),
            settings=FAST,
        )
    assert "403" in refused.value.message
    assert refused.value.summary.patients_loaded == 0
    with pytest.raises(LoadRefused) as unknown:
        await load_patients(
            PhiTarget(fhir_url=served_phi_url + "/nothing-here", access_token="x"),
            options(2),
            settings=FAST,
        )
    assert "refused the load: 40" in unknown.value.message
    assert await count(served_phi_url, token_factory, "Patient") == 0


async def test_a_cancelled_load_stops_between_bundles(
    served_phi_url: str, token_factory: TokenFactory
) -> None:
    done: list[int] = []

    def cancelled() -> bool:
        return bool(done) and done[-1] >= 3

    with pytest.raises(LoadCancelled) as stopped:
        await load_patients(
            target(served_phi_url, token_factory),
            options(30),
            settings=LoadSettings(batch_size=3, concurrency=1),
            on_progress=done.append,
            is_cancelled=cancelled,
        )
    assert 3 <= stopped.value.summary.patients_loaded < 30
    assert (
        await count(served_phi_url, token_factory, "Patient")
        == stopped.value.summary.patients_loaded
    )


def test_bundles_are_packed_by_patients_and_entries() -> None:
    from medmesh.synthetic.loading.batches import PatientBundle, pack

    patients = [PatientBundle(i, [{}] * size, None) for i, size in enumerate([5, 5, 5, 30, 2])]
    packed = [[p.index for p in b.patients] for b in pack(patients, batch_size=2, max_entries=12)]
    assert packed == [[0, 1], [2], [3], [4]]
    assert orjson.loads(next(pack(patients[:2], 10, 100)).body())["type"] == "transaction"
