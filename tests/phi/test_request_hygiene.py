"""Request hygiene of the FHIR API: strings holding U+0000 are refused, a body sent too slowly
gets 408 as an OperationOutcome."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from sqlalchemy import func, select

from medmesh.phi.config import PhiSettings
from medmesh.phi.models import ResourceRow
from tests.phi.conftest import AUDIENCE, PhiHarness
from tests.platform.guarded_server import guarded_server, read_response, read_to_end

NUL_REFUSED = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "value",
            "diagnostics": "strings may not contain the NUL character (\\u0000)",
        }
    ],
}


async def stored_resources(phi: PhiHarness) -> int:
    async with phi.app.state.database.unit_of_work() as session:
        statement = select(func.count()).select_from(ResourceRow)
        return int((await session.execute(statement)).scalar_one())


@pytest.mark.parametrize(
    "body",
    [
        b'{"resourceType": "Patient", "name": [{"family": "Nul\\u0000l"}]}',
        b'{"resourceType": "Patient", "name": [{"given": ["\\u0000"]}]}',
        b'{"resourceType": "Patient", "extension\\u0000": []}',
    ],
    ids=["in-a-value", "a-whole-value", "in-a-key"],
)
async def test_a_nul_character_in_any_json_string_is_refused_and_nothing_stored(
    phi: PhiHarness, body: bytes
) -> None:
    create = await phi.http.post("/fhir/Patient", content=body, headers=phi.headers())
    update = await phi.http.put(
        "/fhir/Patient/nul-1",
        content=body.replace(b'"Patient",', b'"Patient", "id": "nul-1",', 1),
        headers=phi.headers(),
    )
    transaction = b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": %s, "request": {"method": "POST", "url": "Patient"}}]}'
    bundle = await phi.http.post("/fhir", content=transaction % body, headers=phi.headers())

    assert [create.status_code, update.status_code, bundle.status_code] == [400, 400, 400]
    assert create.json() == update.json() == bundle.json() == NUL_REFUSED
    assert await stored_resources(phi) == 0


async def test_an_escaped_backslash_before_u0000_is_text_and_accepted(phi: PhiHarness) -> None:
    # JSON "\\u0000" is a backslash followed by "u0000": six ordinary characters.
    body = b'{"resourceType": "Patient", "name": [{"family": "Back\\\\u0000slash"}]}'
    response = await phi.http.post("/fhir/Patient", content=body, headers=phi.headers())

    assert response.status_code == 201
    assert response.json()["name"] == [{"family": "Back\\u0000slash"}]


@pytest.fixture
def phi_settings(phi_settings: PhiSettings) -> PhiSettings:
    return phi_settings.model_copy(update={"body_read_timeout": 0.5})


async def test_a_create_whose_body_comes_too_slowly_gets_408_as_an_operation_outcome(
    phi: PhiHarness,
) -> None:
    token = phi.tokens.headers("system/*.cruds", audience=AUDIENCE)["Authorization"]
    async with guarded_server(phi.app) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /fhir/Patient HTTP/1.1\r\nHost: phi\r\nContent-Type: application/fhir+json\r\n"
            b"Authorization: " + token.encode() + b"\r\nContent-Length: 500\r\n\r\n{"
        )
        status, headers, body = await read_response(reader)
        rest = await read_to_end(reader)
        writer.close()

    assert status == b"HTTP/1.1 408 Request Timeout"
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/fhir+json"
    assert orjson.loads(body) == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "timeout",
                "diagnostics": "the request body did not arrive within 0.5 s",
            }
        ],
    }
    assert rest == b""
    assert await stored_resources(phi) == 0
