"""What was stored before phi validated R4 itself is refused now: 400, each issue naming its
element, nothing stored, no submitted value echoed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import stored_rows

#: A distinctive value in every bad resource: it must not come back in an error.
SECRET = "Quillfeatherstone"
_XHTML = "http://www.w3.org/1999/xhtml"


def _patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": SECRET}], **fields}


def _observation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": SECRET}, **fields}


CASES: list[tuple[str, dict[str, Any], list[tuple[str, str, str]]]] = [
    (
        "bogus required-binding code",
        {
            "resourceType": "Goal",
            "lifecycleStatus": "bogus-code",
            "description": {"text": SECRET},
            "subject": {"reference": "Patient/p1"},
        },
        [
            (
                "code-invalid",
                "Goal.lifecycleStatus",
                "Goal.lifecycleStatus: not a code of its required value set",
            )
        ],
    ),
    (
        "nested bogus required-binding code",
        _patient(contact=[{"telecom": [{"system": "bogus-code", "value": SECRET}]}]),
        [
            (
                "code-invalid",
                "Patient.contact[0].telecom[0].system",
                "Patient.contact[0].telecom[0].system: not a code of its required value set",
            )
        ],
    ),
    (
        "reference to a type R4 does not allow there",
        _observation(subject={"reference": "Specimen/x"}),
        [
            (
                "value",
                "Observation.subject.reference",
                "Observation.subject.reference: may refer to Device|Group|Location|Patient only,"
                " not Specimen",
            )
        ],
    ),
    (
        "script in the narrative",
        _patient(
            text={
                "status": "generated",
                "div": f'<div xmlns="{_XHTML}"><script>alert("{SECRET}")</script></div>',
            }
        ),
        [
            (
                "invariant",
                "Patient.text.div",
                "Patient.text.div: the narrative holds a <script> element, which R4 does not allow",
            )
        ],
    ),
    (
        "null",
        _patient(active=None),
        [("structure", "Patient.active", "Patient.active: null is not a FHIR value")],
    ),
    (
        "empty array",
        _patient(identifier=[]),
        [("structure", "Patient.identifier", "Patient.identifier: empty array")],
    ),
    (
        "empty object",
        _patient(maritalStatus={}),
        [("structure", "Patient.maritalStatus", "Patient.maritalStatus: empty object")],
    ),
    (
        "several at once",
        _patient(active=None, gender="sometimes", identifier=[]),
        [
            ("structure", "Patient.active", "Patient.active: null is not a FHIR value"),
            (
                "code-invalid",
                "Patient.gender",
                "Patient.gender: not a code of its required value set",
            ),
            ("structure", "Patient.identifier", "Patient.identifier: empty array"),
        ],
    ),
]


@pytest.mark.parametrize(("resource", "issues"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
async def test_accepted_before_refused_now(
    phi: PhiHarness, resource: dict[str, Any], issues: list[tuple[str, str, str]]
) -> None:
    before = await stored_rows(phi.app)
    url = f"/fhir/{resource['resourceType']}"
    for response in (
        await phi.http.post(url, json=resource, headers=phi.headers()),
        await phi.http.put(f"{url}/r1", json={**resource, "id": "r1"}, headers=phi.headers()),
    ):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        found = [(i["code"], i["expression"], i["diagnostics"]) for i in outcome["issue"]]
        assert sorted(found) == sorted((code, [path], text) for code, path, text in issues)
        assert all(i["severity"] == "error" for i in outcome["issue"])
        assert SECRET not in response.text
    assert await stored_rows(phi.app) == before


async def test_a_misspelt_reference_is_canonicalized_before_validation(phi: PhiHarness) -> None:
    """An absolute URL of this server becomes ``Patient/id`` first, so R4 sees a Patient."""
    owner = await phi.http.post("/fhir/Patient", json=_patient(), headers=phi.headers())
    owner_id = owner.json()["id"]
    absolute = f"{str(phi.http.base_url).rstrip('/')}/fhir/Patient/{owner_id}"
    created = await phi.http.post(
        "/fhir/Observation",
        json=_observation(subject={"reference": absolute}),
        headers=phi.headers(),
    )
    assert created.status_code == 201, created.text
    assert created.json()["subject"] == {"reference": f"Patient/{owner_id}"}
