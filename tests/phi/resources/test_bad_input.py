"""Bad input answers 4xx with an OperationOutcome and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from medmesh.phi.config import PhiSettings
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import observation, patient, stored_rows

MAX_BODY = 200_000


@pytest.fixture
def phi_settings(phi_settings: PhiSettings) -> PhiSettings:
    # A small body limit, so that "oversized" does not need megabytes.
    return phi_settings.model_copy(update={"max_body_bytes": MAX_BODY})


def _nested(depth: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        extension = {"url": "http://example.org/nest", "extension": [extension]}
    return extension


async def _check(
    phi: PhiHarness, method: str, url: str, expected: set[int], **kwargs: Any
) -> dict[str, Any]:
    before = await stored_rows(phi.app)
    headers = {**phi.headers(), **kwargs.pop("headers", {})}
    response = await phi.http.request(method, url, headers=headers, **kwargs)
    assert response.status_code in expected, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    assert await stored_rows(phi.app) == before
    return body


async def test_invalid_json(phi: PhiHarness) -> None:
    await _check(phi, "POST", "/fhir/Patient", {400}, content=b'{"resourceType": "Patient", ')
    await _check(phi, "PUT", "/fhir/Patient/p1", {400}, content=b"not json")
    await _check(phi, "POST", "/fhir/Patient", {400}, content=b"")
    await _check(phi, "POST", "/fhir/Patient", {400}, content=b"[1, 2]")


async def test_resource_type_must_match_the_url(phi: PhiHarness) -> None:
    body = await _check(phi, "POST", "/fhir/Patient", {400}, json=observation("p1"))
    assert "Patient" in body["issue"][0]["diagnostics"] or body["issue"][0].get("expression")
    await _check(phi, "PUT", "/fhir/Observation/o1", {400}, json=patient(id="o1"))


async def test_unknown_element(phi: PhiHarness) -> None:
    await _check(phi, "POST", "/fhir/Patient", {400}, json=patient(favouriteColour="blue"))


async def test_bad_date(phi: PhiHarness) -> None:
    await _check(phi, "POST", "/fhir/Patient", {400}, json=patient(birthDate="1970-13-45"))
    await _check(phi, "POST", "/fhir/Patient", {400}, json=patient(birthDate="yesterday"))


async def test_bad_required_binding(phi: PhiHarness) -> None:
    await _check(phi, "POST", "/fhir/Patient", {400}, json=patient(gender="sometimes"))


async def test_id_mismatch_on_put(phi: PhiHarness) -> None:
    await _check(phi, "PUT", "/fhir/Patient/p1", {400}, json=patient(id="p2"))
    await _check(phi, "PUT", "/fhir/Patient/p1", {400}, json=patient())


async def test_absurd_nesting(phi: PhiHarness) -> None:
    # Deep but valid JSON: refused by the depth limit before the model sees it.
    await _check(phi, "POST", "/fhir/Patient", {400, 413}, json=patient(extension=[_nested(200)]))
    # Deeper than any JSON parser accepts.
    await _check(phi, "POST", "/fhir/Patient", {400, 413}, content=b"[" * 100_000 + b"]" * 100_000)


async def test_oversized_body(phi: PhiHarness) -> None:
    big = patient(
        text={
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * (MAX_BODY + 1) + "</div>",
        }
    )
    await _check(phi, "POST", "/fhir/Patient", {413}, json=big)


async def test_unsupported_type_and_bad_id(phi: PhiHarness) -> None:
    await _check(phi, "POST", "/fhir/Spaceship", {404}, json={"resourceType": "Spaceship"})
    await _check(phi, "PUT", "/fhir/Patient/" + "x" * 65, {400}, json=patient(id="x" * 65))


async def test_wrong_media_type(phi: PhiHarness) -> None:
    await _check(
        phi,
        "POST",
        "/fhir/Patient",
        {415},
        content=b"<Patient/>",
        headers={"Content-Type": "application/xml"},
    )
