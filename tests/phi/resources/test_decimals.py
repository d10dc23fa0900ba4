"""Decimals read back as written (R4 §2.6.2: a decimal's precision is part of its value)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from medmesh.phi.fhir import jsontext
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import patient

#: ``1.50`` and its friends as a float would write them back (``1.5``, ``100.0``, ...).
WRITTEN = ["1.50", "120.000", "0.00001", "3.14159265358979323846264338327950288", "72", "1.5"]


def _observation(patient_id: str, *values: str) -> bytes:
    components = ",".join(
        f'{{"code": {{"text": "c{i}"}}, "valueQuantity": {{"value": {v}, "unit": "mg"}}}}'
        for i, v in enumerate(values)
    )
    return (
        '{"resourceType": "Observation", "status": "final", "code": {"text": "dose"},'
        f' "subject": {{"reference": "Patient/{patient_id}"}}, "component": [{components}]}}'
    ).encode()


async def test_decimals_read_back_as_written(phi: PhiHarness) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    created = await phi.http.post(
        "/fhir/Observation", content=_observation(owner, *WRITTEN), headers=phi.headers()
    )
    assert created.status_code == 201, created.text
    for response in (
        created,
        await phi.http.get(f"/fhir/Observation/{created.json()['id']}", headers=phi.headers()),
    ):
        assert response.status_code == 200 or response.status_code == 201
        for written in WRITTEN:
            assert f'"value":{written},' in response.text
    searched = await phi.http.get(
        "/fhir/Observation", params={"patient": owner}, headers=phi.headers()
    )
    assert '"value":1.50,' in searched.text
    assert '"value":3.14159265358979323846264338327950288,' in searched.text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b'{"v": 1.50}', Decimal("1.50")),
        (b'{"v": 1.5}', 1.5),
        (b'{"v": 12345678901234567.5}', Decimal("12345678901234567.5")),
        (b'{"v": "1.50"}', "1.50"),
        (b'{"v": 2}', 2),
    ],
)
def test_only_numbers_a_float_would_change_become_decimals(text: bytes, value: object) -> None:
    parsed = jsontext.loads(text)["v"]
    assert parsed == value
    assert type(parsed) is type(value)
    assert jsontext.dumps({"v": parsed}) == text.replace(b" ", b"")


async def test_a_bad_decimal_is_still_refused(phi: PhiHarness) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    body = _observation(owner, "1.50").replace(b'"unit": "mg"', b'"unit": 1.50')
    refused = await phi.http.post("/fhir/Observation", content=body, headers=phi.headers())
    assert refused.status_code == 400, refused.text
    assert refused.json()["issue"][0]["expression"] == [
        "Observation.component[0].valueQuantity.unit"
    ]
