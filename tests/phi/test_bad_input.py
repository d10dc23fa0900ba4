"""Bad input of every kind answers 4xx with an OperationOutcome, stores nothing, echoes no PHI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from medmesh.phi.config import PhiSettings
from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.search.models import INDEX_TABLES
from tests.phi.conftest import PhiHarness

MAX_BODY = 100_000
#: A distinctive name in every bad resource: it must not come back in an error.
FAMILY = "Quillfeatherstone"


@pytest.fixture
def phi_settings(phi_settings: PhiSettings) -> PhiSettings:
    return phi_settings.model_copy(update={"max_body_bytes": MAX_BODY})


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": FAMILY}], **fields}


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        node = {"url": "http://example.org/nest", "extension": [node]}
    return patient(extension=[node])


def deep_text(depth: int) -> str:
    """JSON nested ``depth`` extension levels deep, built as text (encoders refuse such depth)."""
    opening = '{"url": "http://example.org/nest", "extension": ['
    return '{"resourceType": "Patient", "extension": [' + opening * depth + "]}" * depth + "]}"


async def row_counts(app: FastAPI) -> dict[str, int]:
    counts = {}
    async with app.state.database.unit_of_work() as session:
        for table in (ResourceRow, ResourceVersionRow, *INDEX_TABLES):
            stmt = select(func.count()).select_from(table)
            counts[table.__tablename__] = int((await session.execute(stmt)).scalar_one())
    return counts


def _raw(body: str) -> dict[str, Any]:
    return {"content": body.encode()}


def _json(body: Any) -> dict[str, Any]:
    return {"json": body}


CASES: list[tuple[str, str, str, dict[str, Any], set[int]]] = [
    (
        "truncated JSON",
        "POST",
        "/fhir/Patient",
        _raw('{"resourceType": "Patient", "name": ['),
        {400},
    ),
    ("not JSON at all", "PUT", "/fhir/Patient/p1", _raw(f"family={FAMILY}"), {400}),
    ("empty body", "POST", "/fhir/Patient", _raw(""), {400}),
    ("JSON array", "POST", "/fhir/Patient", _json([patient()]), {400}),
    ("JSON string", "POST", "/fhir/Patient", _json(FAMILY), {400}),
    ("no resourceType", "POST", "/fhir/Patient", _json({"name": [{"family": FAMILY}]}), {400}),
    (
        "resourceType mismatch on create",
        "POST",
        "/fhir/Patient",
        _json({"resourceType": "Practitioner", "name": [{"family": FAMILY}]}),
        {400},
    ),
    (
        "resourceType mismatch on update",
        "PUT",
        "/fhir/Observation/o1",
        _json(patient(id="o1")),
        {400},
    ),
    ("unknown element", "POST", "/fhir/Patient", _json(patient(favouriteColour="teal")), {400}),
    (
        "unknown nested element",
        "POST",
        "/fhir/Patient",
        _json({"resourceType": "Patient", "name": [{"family": FAMILY, "nickname": "Q"}]}),
        {400},
    ),
    ("bad date", "POST", "/fhir/Patient", _json(patient(birthDate="1970-13-45")), {400}),
    ("date with words", "POST", "/fhir/Patient", _json(patient(birthDate="yesterday")), {400}),
    ("bad code", "POST", "/fhir/Patient", _json(patient(gender="sometimes")), {400}),
    ("wrong JSON type", "POST", "/fhir/Patient", _json(patient(active="yes")), {400}),
    (
        "id mismatch on PUT",
        "PUT",
        "/fhir/Patient/p1",
        _json(patient(id="p2")),
        {400},
    ),
    ("invalid id in URL", "PUT", "/fhir/Patient/not%20an%20id", _json(patient()), {400}),
    ("deep nesting", "POST", "/fhir/Patient", _json(nested(100)), {400}),
    ("absurd nesting", "POST", "/fhir/Patient", _raw(deep_text(1_500)), {400}),
    (
        "oversized body",
        "POST",
        "/fhir/Patient",
        _json(patient(extension=[{"url": "http://e.org/x", "valueString": "x" * MAX_BODY}])),
        {413},
    ),
    (
        "wrong content type",
        "POST",
        "/fhir/Patient",
        {"content": b"<Patient/>", "headers": {"Content-Type": "application/xml"}},
        {415},
    ),
    (
        "form content type",
        "POST",
        "/fhir/Patient",
        {"content": b"family=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        {415},
    ),
    ("unsupported type", "POST", "/fhir/Spaceship", _json({"resourceType": "Spaceship"}), {404}),
    (
        "transaction with one bad entry",
        "POST",
        "/fhir",
        _json(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
                    {
                        "resource": patient(birthDate="1970-02-30"),
                        "request": {"method": "POST", "url": "Patient"},
                    },
                ],
            }
        ),
        {400, 422},
    ),
    (
        "bundle of an unknown type",
        "POST",
        "/fhir",
        _json({"resourceType": "Bundle", "type": "collection", "entry": []}),
        {400, 422},
    ),
]


@pytest.fixture
async def stored_before(phi: PhiHarness) -> dict[str, int]:
    # One good resource first, so that "stores nothing" is not trivially true of empty tables.
    await phi.create(patient(id="p1"))
    return await row_counts(phi.app)


@pytest.mark.parametrize(
    ("method", "url", "request_kwargs", "statuses"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
async def test_bad_input_is_refused_and_stores_nothing(
    phi: PhiHarness,
    stored_before: dict[str, int],
    method: str,
    url: str,
    request_kwargs: dict[str, Any],
    statuses: set[int],
) -> None:
    kwargs = dict(request_kwargs)
    headers = {**phi.headers(), **kwargs.pop("headers", {})}
    response = await phi.http.request(method, url, headers=headers, **kwargs)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"]
    assert all(issue["severity"] in {"error", "fatal"} for issue in outcome["issue"])
    assert FAMILY not in response.text
    assert await row_counts(phi.app) == stored_before


async def test_a_body_without_content_length_is_still_limited(
    phi: PhiHarness, stored_before: dict[str, int]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"resourceType": "Patient", "extension": [{"url": "http://e.org/x", "valueString": "'
        for _ in range(MAX_BODY // 1000 + 1):
            yield b"y" * 1000
        yield b'"}]}'

    response = await phi.http.post("/fhir/Patient", content=chunks(), headers=phi.headers())
    assert response.status_code == 413, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert await row_counts(phi.app) == stored_before


async def test_a_good_resource_after_bad_ones_is_stored(
    phi: PhiHarness, stored_before: dict[str, int]
) -> None:
    bad = await phi.http.post(
        "/fhir/Patient", json=patient(birthDate="1970-13-45"), headers=phi.headers()
    )
    assert bad.status_code == 400
    good = await phi.http.post("/fhir/Patient", json=patient(), headers=phi.headers())
    assert good.status_code == 201, good.text
    after = await row_counts(phi.app)
    assert after["resources"] == stored_before["resources"] + 1
