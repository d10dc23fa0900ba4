"""A large transaction's creates prepared by worker processes (and, for a transaction of
creates only, written by one of them) store and answer exactly what the service's own process
does.

A differential test: the same transaction Bundles (Synthea people, one with an absolute
reference to this server, one with a bad entry among many good ones, one answered with
representations) posted to a phi with two preparation workers and to one with none, the
server ids drawn from the same sequence: same responses, same versions (opened), same index
rows, same audit records.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bundles import processing
from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app
from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import TokenVerifier
from tests.phi.bulk_import.test_preparation import BASE, _audit, _settings, _stored, sealed_here
from tests.phi.conftest import AUDIENCE
from tests.phi.test_conformance import SYNTHEA_2019


def _bundles() -> list[tuple[dict[str, Any], str]]:
    """(Bundle, Prefer) pairs: three Synthea people, then the cases around them."""
    people = [orjson.loads(p.read_bytes()) for p in sorted(SYNTHEA_2019.glob("*.json"))[:3]]
    assert all(len(b["entry"]) >= processing.PREPARED_CREATES for b in people)
    first = people[0]
    spoilt = orjson.loads(orjson.dumps(people[1]))
    observation = next(
        e for e in spoilt["entry"][40:] if e["resource"]["resourceType"] == "Observation"
    )
    observation["resource"]["status"] = "bogus-code"
    return [
        (first, "return=minimal"),
        (people[1], "return=OperationOutcome"),
        (spoilt, "return=minimal"),
        (people[2], "return=representation"),
        (_absolute(), "return=minimal"),
    ]


def _absolute(count: int = processing.PREPARED_CREATES + 6) -> dict[str, Any]:
    """A transaction of ``count`` Observations of the first Patient created, named by absolute
    URL under this server's base (its id is the first the server drew)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
                "request": {"method": "POST", "url": "Observation"},
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"{BASE}/Patient/id-000001"},
                    "valueQuantity": {"value": 60 + n, "unit": "/min"},
                },
            }
            for n in range(count)
        ],
    }


@asynccontextmanager
async def _phi(settings: PhiSettings, tokens: TokenFactory) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.state.verifier = TokenVerifier("http://auth.test", AUDIENCE, jwks=tokens.jwks())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://phi.test") as http:
            yield http


def _answer(response: httpx.Response) -> dict[str, Any]:
    """A response without what differs from run to run (the response Bundle's own id, times)."""
    body: dict[str, Any] = response.json()
    body.pop("id", None)
    for entry in body.get("entry", ()):
        entry.get("response", {}).pop("lastModified", None)
        meta = entry.get("resource", {}).get("meta")
        if meta is not None:
            meta.pop("lastUpdated", None)
    return {"status": response.status_code, "body": body}


async def test_workers_prepare_what_the_service_process_prepares(
    phi_settings: PhiSettings,
    token_factory: TokenFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held_here = sealed_here(monkeypatch)
    bundles = _bundles()
    base = phi_settings.model_copy(update={"base_url": BASE})
    answers: dict[int, list[dict[str, Any]]] = {}
    stored: dict[int, Any] = {}
    audit: dict[int, Any] = {}
    headers = {
        **token_factory.headers("system/*.cruds", audience=AUDIENCE),
        "Content-Type": "application/fhir+json",
    }
    for workers in (2, 0):
        settings = await _settings(
            base.model_copy(update={"import_workers": workers}), tmp_path / f"workers-{workers}"
        )
        ids = itertools.count(1)
        monkeypatch.setattr(processing, "new_id", lambda ids=ids: f"id-{next(ids):06d}")
        answers[workers] = []
        async with _phi(settings, token_factory) as http:
            for bundle, prefer in bundles:
                response = await http.post(
                    "/fhir", content=orjson.dumps(bundle), headers={**headers, "Prefer": prefer}
                )
                answers[workers].append(_answer(response))
            metrics = (await http.get("/metrics")).text
        stored[workers] = _stored(settings)
        audit[workers] = await _audit(settings)
        # Sealed here: with workers, the creates of the Bundle answered with representations
        # only (the spoilt Bundle's bad entry fails its checks here before it is held).
        entries = [len(b["entry"]) for b, _ in bundles]
        spoilt_at = next(
            i
            for i, e in enumerate(bundles[2][0]["entry"])
            if e["resource"].get("status") == "bogus-code"
        )
        all_held = entries[0] + entries[1] + spoilt_at + entries[3] + entries[4]
        assert len(held_here) == (entries[3] if workers else all_held)
        held_here.clear()
        if workers:
            # Prepared: all but the spoilt entry itself (refused there, then here).
            prepared = entries[0] + entries[1] + entries[2] - 1 + entries[4]
            assert (
                f'medmesh_phi_resources_prepared_by_workers_total{{kind="transaction"}} '
                f"{prepared:.1f}" in metrics
            )
            assert "medmesh_phi_preparation_workers_lost_total 0.0" in metrics
            # Written by a worker: the Bundles of creates by the system but the spoilt one
            # (handed back, refused here) and the one answered with representations.
            written = entries[0] + entries[1] + entries[4]
            assert (
                f"medmesh_phi_transaction_resources_written_by_workers_total {written:.1f}"
                in metrics
            )
        else:
            assert "medmesh_phi_resources_prepared_by_workers_total" not in metrics

    assert answers[2] == answers[0]
    assert stored[2] == stored[0]
    assert audit[2] == audit[0]
    assert [a["status"] for a in answers[0]] == [200, 200, 400, 200, 200]
    spoilt = answers[0][2]["body"]["issue"][0]
    assert spoilt["diagnostics"].endswith(
        "Observation.status: not a code of its required value set"
    )
    first = next(v for v in stored[0]["versions"] if v[1] == "id-000001")
    assert first[0] == "Patient"
    absolute = [v for v in stored[0]["versions"] if v[0] == "Observation" and v[4] == "id-000001"]
    assert absolute
    assert {v[6]["subject"]["reference"] for v in absolute} == {"Patient/id-000001"}


async def test_a_small_transaction_is_prepared_in_the_service_process(
    phi_settings: PhiSettings,
    token_factory: TokenFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submitted: list[int] = []
    prepare, write = PreparationPool.prepare_resources, PreparationPool.submit_bundle_write

    async def counted(self: PreparationPool, items: Any, *args: Any) -> Any:
        submitted.append(len(items))
        return await prepare(self, items, *args)

    def counted_write(self: PreparationPool, items: Any, *args: Any) -> Any:
        submitted.append(len(items))
        return write(self, items, *args)

    monkeypatch.setattr(PreparationPool, "prepare_resources", counted)
    monkeypatch.setattr(PreparationPool, "submit_bundle_write", counted_write)
    settings = await _settings(phi_settings, tmp_path / "small")
    small_bundle = _absolute(processing.PREPARED_CREATES - 1)
    large_bundle = _absolute(processing.PREPARED_CREATES)
    headers = {
        **token_factory.headers("system/*.cruds", audience=AUDIENCE),
        "Content-Type": "application/fhir+json",
    }
    async with _phi(settings, token_factory) as http:
        small = await http.post("/fhir", content=orjson.dumps(small_bundle), headers=headers)
        large = await http.post("/fhir", content=orjson.dumps(large_bundle), headers=headers)

    assert (small.status_code, large.status_code) == (200, 200)
    assert submitted == [processing.PREPARED_CREATES]
