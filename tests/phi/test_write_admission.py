"""Write admission: a slot is taken only once the body is in and the token may write, and one
client holds at most its share of the slots."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from medmesh.phi.admission import WriteAdmission
from medmesh.phi.config import PhiSettings
from tests.phi.conftest import AUDIENCE, PhiHarness
from tests.platform.guarded_server import HANG_GUARD, guarded_server

PATIENT = {"resourceType": "Patient", "name": [{"family": "Trickle"}]}


async def _trickle(writer: asyncio.StreamWriter) -> None:
    """Send a body one byte at a time, for as long as the test lets it."""
    while True:
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.1)


async def test_fifty_trickling_bodies_leave_creates_answering(phi: PhiHarness) -> None:
    """The slow-body test: 50 trickling connections, and normal creates still answer promptly
    (asserted on completion, not on a duration)."""
    async with guarded_server(phi.app) as (port, _):
        tricklers = []
        for number in range(50):
            # Half hold a token that may write, half a read-only one.
            scope = "system/*.cruds" if number % 2 else "system/*.rs"
            token = phi.tokens.headers(scope, audience=AUDIENCE)["Authorization"]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /fhir/Patient HTTP/1.1\r\nHost: phi\r\nContent-Type: application/fhir+json"
                b"\r\nAuthorization: " + token.encode() + b"\r\nContent-Length: 100000\r\n\r\n{"
            )
            tricklers.append((writer, asyncio.create_task(_trickle(writer))))
        await asyncio.sleep(0.3)  # every trickler's request has reached the app

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            creates = [
                http.post("/fhir/Patient", content=orjson.dumps(PATIENT), headers=phi.headers())
                for _ in range(12)
            ]
            responses = await asyncio.wait_for(asyncio.gather(*creates), HANG_GUARD)
        still_trickling = [not task.done() for _, task in tricklers]
        for writer, task in tricklers:
            task.cancel()
            writer.close()

    assert [response.status_code for response in responses] == [201] * 12
    assert all(still_trickling)


async def test_a_read_only_token_never_waits_for_a_write_slot(phi: PhiHarness) -> None:
    resources = phi.app.state.phi.resources
    admission: WriteAdmission = resources.writes
    hog = WriteAdmission(admission.slots, admission.slots)
    resources.writes = hog
    for _ in range(hog.slots):  # every slot taken by another client's writes
        await hog.acquire("another-client")
    try:
        create = phi.http.post("/fhir/Patient", json=PATIENT, headers=phi.headers("system/*.rs"))
        delete = phi.http.delete("/fhir/Patient/abc", headers=phi.headers("system/*.rs"))
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "GET", "url": "Patient/abc"}}],
        }
        reads = phi.http.post("/fhir", json=batch, headers=phi.headers("system/*.rs"))
        refused, refused_delete, batch_response = await asyncio.wait_for(
            asyncio.gather(create, delete, reads), HANG_GUARD
        )
    finally:
        for _ in range(hog.slots):
            hog.release("another-client")

    assert refused.status_code == 403
    assert refused.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "forbidden",
                "diagnostics": "the access token does not allow create of this Patient",
            }
        ],
    }
    assert refused_delete.status_code == 403
    assert batch_response.status_code == 200
    assert batch_response.json()["type"] == "batch-response"
    assert batch_response.json()["entry"][0]["response"]["status"] == "404 Not Found"


async def test_one_client_holds_at_most_its_share_of_the_write_slots() -> None:
    admission = WriteAdmission(4, 3)
    for _ in range(3):
        await admission.acquire("busy-client")
    over_share = asyncio.create_task(admission.acquire("busy-client"))
    await asyncio.sleep(0)
    other = asyncio.create_task(admission.acquire("quiet-client"))
    await asyncio.wait_for(other, HANG_GUARD)  # the fourth slot went to the other client

    assert not over_share.done()
    admission.release("quiet-client")
    assert not over_share.done()  # a free slot, but the busy client is at its share
    admission.release("busy-client")
    await asyncio.wait_for(over_share, HANG_GUARD)
    for _ in range(3):
        admission.release("busy-client")


@pytest.mark.parametrize(
    ("concurrent_writes", "writes_per_client", "share"),
    [(16, 0, 12), (4, 0, 3), (1, 0, 1), (8, 2, 2), (4, 9, 4)],
)
def test_the_client_share_defaults_to_three_quarters_of_the_slots(
    phi_settings: PhiSettings, concurrent_writes: int, writes_per_client: int, share: int
) -> None:
    settings = phi_settings.model_copy(
        update={"concurrent_writes": concurrent_writes, "writes_per_client": writes_per_client}
    )

    assert settings.effective_writes_per_client == share
