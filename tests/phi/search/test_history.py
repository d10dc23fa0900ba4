"""History Bundles: instance, type and system level; newest first; paged; narrowed by access."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records
from tests.phi.search.support import link, observation, patient


async def history(
    phi: PhiHarness, path: str, scope: str = "system/*.rs", **claims: Any
) -> dict[str, Any]:
    response = await phi.http.get(f"/fhir/{path}", headers=phi.headers(scope, **claims))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "history"
    return body


def versions(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["fullUrl"].rsplit("/", 1)[1], e["response"]["etag"]) for e in bundle["entry"]]


async def test_instance_history_newest_first_with_requests_and_responses(phi: PhiHarness) -> None:
    p = await phi.create(patient("Versioned"))
    updated = {**p, "gender": "male"}
    response = await phi.http.put(f"/fhir/Patient/{p['id']}", json=updated, headers=phi.headers())
    assert response.status_code == 200
    assert (
        await phi.http.delete(f"/fhir/Patient/{p['id']}", headers=phi.headers())
    ).status_code == 204

    bundle = await history(phi, f"Patient/{p['id']}/_history")
    assert [e["response"]["etag"] for e in bundle["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    deleted, second, first = bundle["entry"]
    assert "resource" not in deleted
    assert deleted["request"] == {"method": "DELETE", "url": f"Patient/{p['id']}"}
    assert second["request"] == {"method": "PUT", "url": f"Patient/{p['id']}"}
    assert second["resource"]["gender"] == "male"
    assert first["request"] == {"method": "POST", "url": "Patient"}
    assert first["response"]["status"].startswith("201")
    assert first["resource"]["meta"]["versionId"] == "1"


async def test_type_and_system_history_page_with_next_links(phi: PhiHarness) -> None:
    a = await phi.create(patient("One"))
    for _ in range(4):
        await phi.create(observation(a["id"]))
    first = await history(phi, "Observation/_history?_count=3")
    assert len(first["entry"]) == 3
    second_url = link(first, "next")
    assert second_url is not None
    response = await phi.http.get(second_url, headers=phi.headers("system/*.rs"))
    second = response.json()
    assert len(second["entry"]) == 1
    assert link(second, "next") is None
    assert not set(versions(first)) & set(versions(second))

    everything = await history(phi, "_history")
    assert {e["fullUrl"].split("/fhir/")[1].split("/")[0] for e in everything["entry"]} == {
        "Patient",
        "Observation",
    }
    assert len(everything["entry"]) == 5
    since = first["entry"][0]["response"]["lastModified"]
    assert len((await history(phi, f"Observation/_history?_since={since}"))["entry"]) >= 1


async def test_patient_token_history_is_its_compartment_only(phi: PhiHarness) -> None:
    mine = await phi.create(patient("Mine"))
    theirs = await phi.create(patient("Theirs"))
    my_obs = await phi.create(observation(mine["id"]))
    their_obs = await phi.create(observation(theirs["id"]))
    scope, claims = "patient/*.rs", {"patient": mine["id"]}

    system = await history(phi, "_history", scope, **claims)
    urls = {e["fullUrl"].split("/fhir/")[1] for e in system["entry"]}
    assert urls == {f"Patient/{mine['id']}", f"Observation/{my_obs['id']}"}
    refused = await phi.http.get(
        f"/fhir/Observation/{their_obs['id']}/_history", headers=phi.headers(scope, **claims)
    )
    assert refused.status_code == 403
    assert len((await history(phi, "Observation/_history", scope, **claims))["entry"]) == 1
    records = await audit_records(phi.app, action="fhir.history")
    assert records[-1].patient_ids == [mine["id"]]


async def test_history_errors(phi: PhiHarness) -> None:
    response = await phi.http.get("/fhir/Patient/nope/_history", headers=phi.headers())
    assert response.status_code == 404
    response = await phi.http.get("/fhir/Patient/_history?_since=yesterday", headers=phi.headers())
    assert response.status_code == 400
    response = await phi.http.get(
        "/fhir/Patient/_history", headers=phi.headers("system/Observation.rs")
    )
    assert response.status_code == 403


async def test_history_since_the_last_instant_of_year_9999_is_an_empty_page_not_a_crash(
    phi: PhiHarness,
) -> None:
    response = await phi.http.get(
        "/fhir/_history", params={"_since": "9999-12-31T23:59:59Z"}, headers=phi.headers()
    )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "history"
    assert response.json().get("entry", []) == []
