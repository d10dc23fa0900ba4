"""One canonical form for every reference phi stores or searches (issue #13, item 1).

An absolute reference to this server is stored, checked, indexed and put into a compartment
as ``Type/id``; a malformed local-looking one is refused (400, the element named); external
references, ``#contained``, placeholders and identifier-only references stay as given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from medmesh.phi.config import PhiSettings
from medmesh.phi.main import create_app
from medmesh.phi.migrations import upgrade
from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import TokenVerifier
from tests.phi.conftest import AUDIENCE, BASE, PhiHarness
from tests.phi.resources.support import consent, observation, patient, stored_rows

CLINICIAN: dict[str, Any] = {"scope": "user/*.cruds", "roles": ["clinician"], "sub": "dr-who"}
OTHER_SERVER = "http://other.example.org/fhir"
CONFIGURED = "https://phi.example.org/fhir/"


def _observation(reference: str, **extra: Any) -> dict[str, Any]:
    resource = observation("x", **extra)
    resource["subject"] = {"reference": reference}
    return resource


def _patient_headers(phi: PhiHarness, patient_id: str) -> dict[str, str]:
    return phi.headers("patient/*.rs", patient=patient_id, roles=["patient"], sub="pat")


async def _ids(phi: PhiHarness, params: dict[str, str], headers: dict[str, str]) -> set[str]:
    response = await phi.http.get("/fhir/Observation", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


async def _denied_patient(phi: PhiHarness) -> str:
    denied: str = (await phi.create(patient("Private")))["id"]
    await phi.create(consent(denied))
    return denied


# --- the reproduction ---------------------------------------------------------------------------


async def test_absolute_subject_of_a_consent_denied_patient_is_refused_like_the_relative(
    phi: PhiHarness,
) -> None:
    denied = await _denied_patient(phi)
    before = await stored_rows(phi.app)
    clinician = phi.headers(**CLINICIAN)
    relative = await phi.http.post(
        "/fhir/Observation", json=_observation(f"Patient/{denied}"), headers=clinician
    )
    absolute = await phi.http.post(
        "/fhir/Observation", json=_observation(f"{BASE}/fhir/Patient/{denied}"), headers=clinician
    )
    assert relative.status_code == 403
    assert absolute.status_code == 403
    assert absolute.json() == relative.json()
    assert absolute.json()["issue"][0]["code"] == "forbidden"
    assert await stored_rows(phi.app) == before


async def test_absolute_subject_lands_in_the_patients_compartment(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient("Owner")))["id"]
    created = await phi.create(_observation(f"{BASE}/fhir/Patient/{owner}"))
    assert created["subject"] == {"reference": f"Patient/{owner}"}
    obs = created["id"]

    own = _patient_headers(phi, owner)
    read = await phi.http.get(f"/fhir/Observation/{obs}", headers=own)
    assert read.status_code == 200
    assert read.json()["subject"] == {"reference": f"Patient/{owner}"}

    everything = await phi.http.get(f"/fhir/Patient/{owner}/$everything", headers=own)
    assert everything.status_code == 200
    assert obs in {e["resource"]["id"] for e in everything.json()["entry"]}

    system = phi.headers("system/*.rs")
    assert await _ids(phi, {"subject": f"{BASE}/fhir/Patient/{owner}"}, system) == {obs}
    assert await _ids(phi, {"subject": f"Patient/{owner}"}, system) == {obs}
    assert await _ids(phi, {"subject": f"{BASE}/fhir/Patient/{owner}"}, own) == {obs}


async def test_the_consent_denial_hides_an_absolute_subject_from_user_searches(
    phi: PhiHarness,
) -> None:
    denied = await _denied_patient(phi)
    obs = (await phi.create(_observation(f"{BASE}/fhir/Patient/{denied}")))["id"]
    clinician = phi.headers(**CLINICIAN)
    assert obs not in await _ids(phi, {"subject": f"{BASE}/fhir/Patient/{denied}"}, clinician)
    assert obs not in await _ids(phi, {}, clinician)
    refused = await phi.http.get(f"/fhir/Observation/{obs}", headers=clinician)
    assert refused.status_code == 403


# --- spellings of this server's base that mean Type/id -----------------------------------------


@pytest.mark.parametrize(
    ("spelling", "stored"),
    [
        ("HTTP://PHI.TEST/fhir/Patient/{id}", "Patient/{id}"),
        ("http://Phi.Test:80/fhir/Patient/{id}", "Patient/{id}"),
        ("https://phi.test/fhir/Patient/{id}", "Patient/{id}"),
        ("http://phi.test/fhir/Patient/{id}/_history/1", "Patient/{id}/_history/1"),
        ("Patient/{id}/_history/1", "Patient/{id}/_history/1"),
    ],
)
async def test_local_spellings_are_stored_canonical(
    phi: PhiHarness, spelling: str, stored: str
) -> None:
    owner: str = (await phi.create(patient()))["id"]
    created = await phi.create(_observation(spelling.format(id=owner)))
    assert created["subject"] == {"reference": stored.format(id=owner)}
    own = _patient_headers(phi, owner)
    assert (
        await phi.http.get(f"/fhir/Observation/{created['id']}", headers=own)
    ).status_code == 200
    assert await _ids(phi, {"patient": f"Patient/{owner}"}, phi.headers()) == {created["id"]}
    assert await _ids(phi, {"patient": owner}, phi.headers()) == {created["id"]}


async def test_every_reference_of_a_resource_is_made_canonical(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    visit = await phi.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{owner}"},
        }
    )
    created = await phi.create(
        _observation(
            f"Patient/{owner}",
            encounter={"reference": f"{BASE}/fhir/Encounter/{visit['id']}"},
            performer=[{"reference": f"{BASE}/fhir/Patient/{owner}"}],
        )
    )
    assert created["encounter"] == {"reference": f"Encounter/{visit['id']}"}
    assert created["performer"] == [{"reference": f"Patient/{owner}"}]
    assert await _ids(
        phi, {"encounter": f"{BASE}/fhir/Encounter/{visit['id']}"}, phi.headers()
    ) == {created["id"]}


async def test_update_makes_references_canonical(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    created = await phi.create(observation(owner))
    changed = {**created, "subject": {"reference": f"{BASE}/fhir/Patient/{owner}"}}
    response = await phi.http.put(
        f"/fhir/Observation/{created['id']}", json=changed, headers=phi.headers()
    )
    assert response.status_code == 200
    assert response.json()["subject"] == {"reference": f"Patient/{owner}"}


async def test_update_with_an_absolute_subject_is_refused_for_a_consent_denied_patient(
    phi: PhiHarness,
) -> None:
    denied = await _denied_patient(phi)
    other: str = (await phi.create(patient("Open")))["id"]
    created = await phi.create(observation(other))
    moved = {**created, "subject": {"reference": f"{BASE}/fhir/Patient/{denied}"}}
    response = await phi.http.put(
        f"/fhir/Observation/{created['id']}", json=moved, headers=phi.headers(**CLINICIAN)
    )
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


# --- malformed local references -----------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "Patient/{id}/",
        "patient/{id}",
        " Patient/{id}",
        "Patient/{id} ",
        "Patient/",
        "Patient//{id}",
        "Patient/{id}?x",
        "Patient/{id}#x",
        "Patien/{id}",
        "HumanName/{id}",
        "Patient/{id}_x",
        "Patient/{id}/_history/",
        "/Patient/{id}",
        "Patient?identifier=x",
        "http://phi.test/fhir/Patient/{id}/",
        "http://phi.test/fhir/Patient/{id}?x",
        "http://phi.test/fhir/patient/{id}",
        "http://phi.test/other/Patient/{id}",
        "http://phi.test/fhir//Patient/{id}",
    ],
)
async def test_malformed_local_references_are_refused(phi: PhiHarness, spelling: str) -> None:
    owner: str = (await phi.create(patient()))["id"]
    before = await stored_rows(phi.app)
    response = await phi.http.post(
        "/fhir/Observation", json=_observation(spelling.format(id=owner)), headers=phi.headers()
    )
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["Observation.subject.reference"]
    assert issue["code"] == "value"
    assert owner not in issue["diagnostics"]
    assert await stored_rows(phi.app) == before


async def test_a_malformed_reference_deep_inside_is_named_by_its_path(phi: PhiHarness) -> None:
    resource = observation("x")
    resource["subject"] = {"reference": "Patient/abc"}
    resource["performer"] = [{"reference": "Practitioner/abc"}, {"reference": "Practitioner/"}]
    response = await phi.http.post("/fhir/Observation", json=resource, headers=phi.headers())
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert issue["code"] == "value"
    assert issue["expression"] == ["Observation.performer[1].reference"]


async def test_update_with_a_malformed_reference_changes_nothing(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    created = await phi.create(observation(owner))
    before = await stored_rows(phi.app)
    broken = {**created, "subject": {"reference": f"Patient/{owner}/"}}
    response = await phi.http.put(
        f"/fhir/Observation/{created['id']}", json=broken, headers=phi.headers()
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Observation.subject.reference"]
    assert await stored_rows(phi.app) == before


# --- what stays as given ------------------------------------------------------------------------


async def test_a_reference_to_another_server_stays_external(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    local = (await phi.create(observation(owner)))["id"]
    external = await phi.create(_observation(f"{OTHER_SERVER}/Patient/{owner}"))
    assert external["subject"] == {"reference": f"{OTHER_SERVER}/Patient/{owner}"}

    system = phi.headers("system/*.rs")
    assert await _ids(phi, {"subject": f"Patient/{owner}"}, system) == {local}
    assert await _ids(phi, {"subject": f"{OTHER_SERVER}/Patient/{owner}"}, system) == set()
    own = _patient_headers(phi, owner)
    everything = await phi.http.get(f"/fhir/Patient/{owner}/$everything", headers=own)
    assert external["id"] not in {e["resource"]["id"] for e in everything.json()["entry"]}
    refused = await phi.http.get(f"/fhir/Observation/{external['id']}", headers=own)
    assert refused.status_code == 403


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "#p1"},
        {"identifier": {"system": "urn:oid:1.2.3", "value": "12345"}},
        {"reference": "urn:uuid:0b0c5a1e-0000-4000-8000-000000000001"},
        {"display": "someone"},
    ],
)
async def test_contained_identifier_and_logical_references_stay_as_given(
    phi: PhiHarness, subject: dict[str, Any]
) -> None:
    resource = observation("x", contained=[{"resourceType": "Patient", "id": "p1"}])
    resource["subject"] = subject
    created = await phi.create(resource)
    assert created["subject"] == subject


# --- Bundles ------------------------------------------------------------------------------------


def _entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


async def test_transaction_makes_absolute_references_canonical(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(_observation(f"{BASE}/fhir/Patient/{owner}"))],
    }
    response = await phi.http.post(
        "/fhir", json=bundle, headers={**phi.headers(), "Prefer": "return=representation"}
    )
    assert response.status_code == 200, response.text
    [entry] = response.json()["entry"]
    assert entry["resource"]["subject"] == {"reference": f"Patient/{owner}"}
    own = _patient_headers(phi, owner)
    obs = entry["resource"]["id"]
    assert (await phi.http.get(f"/fhir/Observation/{obs}", headers=own)).status_code == 200


async def test_transaction_with_an_absolute_subject_of_a_denied_patient_is_refused(
    phi: PhiHarness,
) -> None:
    denied = await _denied_patient(phi)
    before = await stored_rows(phi.app)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(_observation(f"{BASE}/fhir/Patient/{denied}"))],
    }
    response = await phi.http.post("/fhir", json=bundle, headers=phi.headers(**CLINICIAN))
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert await stored_rows(phi.app) == before


async def test_transaction_with_a_malformed_reference_is_refused_naming_it(
    phi: PhiHarness,
) -> None:
    owner: str = (await phi.create(patient()))["id"]
    before = await stored_rows(phi.app)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(observation(owner)), _entry(_observation(f"Patient/{owner}/"))],
    }
    response = await phi.http.post("/fhir", json=bundle, headers=phi.headers())
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert issue["code"] == "value"
    assert issue["expression"] == ["Bundle.entry[1]"]
    assert issue["diagnostics"].startswith("Bundle.entry[1]: Observation.subject.reference ")
    assert await stored_rows(phi.app) == before


async def test_batch_refuses_only_the_entry_with_a_malformed_reference(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [_entry(_observation(f"patient/{owner}")), _entry(observation(owner))],
    }
    response = await phi.http.post("/fhir", json=bundle, headers=phi.headers())
    assert response.status_code == 200
    failed, created = response.json()["entry"]
    assert failed["response"]["status"] == "400 Bad Request"
    assert failed["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[0]"]
    assert created["response"]["status"] == "201 Created"


async def test_bundle_placeholders_and_absolute_full_urls_resolve_to_type_id(
    phi: PhiHarness,
) -> None:
    placeholder = "urn:uuid:0b0c5a1e-0000-4000-8000-000000000002"
    absolute = f"{BASE}/fhir/Patient/client-chosen"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _entry(patient(), placeholder),
            _entry(_observation(placeholder)),
            {
                "fullUrl": absolute,
                "resource": {**patient("Other"), "id": "client-chosen"},
                "request": {"method": "PUT", "url": "Patient/client-chosen"},
            },
            _entry(_observation(absolute)),
        ],
    }
    response = await phi.http.post(
        "/fhir", json=bundle, headers={**phi.headers(), "Prefer": "return=representation"}
    )
    assert response.status_code == 200, response.text
    first, by_placeholder, _, by_url = response.json()["entry"]
    assert by_placeholder["resource"]["subject"] == {
        "reference": f"Patient/{first['resource']['id']}"
    }
    assert by_url["resource"]["subject"] == {"reference": "Patient/client-chosen"}


async def test_bundle_search_entries_use_canonical_reference_values(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    obs = (await phi.create(observation(owner)))["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "request": {
                    "method": "GET",
                    "url": f"Observation?subject={BASE}/fhir/Patient/{owner}",
                }
            }
        ],
    }
    response = await phi.http.post("/fhir", json=bundle, headers=phi.headers())
    assert response.status_code == 200
    [entry] = response.json()["entry"]
    assert [e["resource"]["id"] for e in entry["resource"]["entry"]] == [obs]


async def test_conditional_create_matches_an_absolute_reference_value(phi: PhiHarness) -> None:
    owner: str = (await phi.create(patient()))["id"]
    obs = (await phi.create(observation(owner)))["id"]
    response = await phi.http.post(
        "/fhir/Observation",
        json=observation(owner),
        headers={**phi.headers(), "If-None-Exist": f"subject={BASE}/fhir/Patient/{owner}"},
    )
    assert response.status_code == 200
    assert response.json()["id"] == obs


# --- the configured base ------------------------------------------------------------------------


@pytest.fixture
async def configured(
    phi_settings: PhiSettings, token_factory: TokenFactory
) -> AsyncIterator[PhiHarness]:
    settings = phi_settings.model_copy(update={"base_url": CONFIGURED})
    await upgrade(settings.effective_database_url)
    app = create_app(settings)
    app.state.verifier = TokenVerifier("http://auth.test", AUDIENCE, jwks=token_factory.jwks())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield PhiHarness(app, http, token_factory, settings)


@pytest.mark.parametrize(
    "base",
    [
        "https://phi.example.org/fhir",
        "https://PHI.example.org:443/fhir",
        "http://phi.example.org/fhir",
        BASE + "/fhir",
    ],
)
async def test_the_configured_base_and_the_requests_own_are_both_local(
    configured: PhiHarness, base: str
) -> None:
    phi = configured
    denied = await _denied_patient(phi)
    refused = await phi.http.post(
        "/fhir/Observation",
        json=_observation(f"{base}/Patient/{denied}"),
        headers=phi.headers(**CLINICIAN),
    )
    assert refused.status_code == 403
    created = await phi.create(_observation(f"{base}/Patient/{denied}"))
    assert created["subject"] == {"reference": f"Patient/{denied}"}
    assert await _ids(phi, {"subject": f"{base}/Patient/{denied}"}, phi.headers()) == {
        created["id"]
    }


async def test_the_address_the_request_arrived_at_is_local_whatever_the_host_header(
    phi: PhiHarness,
) -> None:
    denied = await _denied_patient(phi)
    headers = {**phi.headers(**CLINICIAN), "Host": "elsewhere.example"}
    refused = await phi.http.post(
        "/fhir/Observation", json=_observation(f"{BASE}/fhir/Patient/{denied}"), headers=headers
    )
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["code"] == "forbidden"
