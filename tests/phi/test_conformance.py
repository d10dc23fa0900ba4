"""Real third-party data (../shared/conformance): Synthea bundles import, HL7 examples round-trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.phi.conftest import PhiHarness

CONFORMANCE = Path("/work/shared/conformance")
SYNTHEA = CONFORMANCE / "synthea"
SYNTHEA_2019 = CONFORMANCE / "synthea-2019"
HL7 = CONFORMANCE / "hl7"


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


async def _import(phi: PhiHarness, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Post the bundle at ``path``; return it and the response Bundle (every entry 200 or 201)."""
    sent = _load(path)
    response = await phi.http.post("/fhir", json=sent, headers=phi.headers())
    assert response.status_code == 200, f"{path.name}: {response.text[:2000]}"
    answer: dict[str, Any] = response.json()
    assert answer["type"] == f"{sent['type']}-response"
    assert len(answer["entry"]) == len(sent["entry"])
    failed = [
        (i, e["response"])
        for i, e in enumerate(answer["entry"])
        if not e["response"]["status"].startswith(("200", "201"))
    ]
    assert not failed, f"{path.name}: {failed[:3]}"
    return sent, answer


async def _check_patient(phi: PhiHarness, path: Path) -> None:
    """Import one patient bundle; its Observation count and references come out right."""
    sent, answer = await _import(phi, path)
    [index] = [i for i, e in enumerate(sent["entry"]) if e["resource"]["resourceType"] == "Patient"]
    patient_id = answer["entry"][index]["response"]["location"].split("/")[1]
    expected = sum(1 for e in sent["entry"] if e["resource"]["resourceType"] == "Observation")

    counted = await phi.http.get(
        f"/fhir/Observation?subject=Patient/{patient_id}&_summary=count", headers=phi.headers()
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()["total"] == expected, path.name

    # Placeholders and conditional references were all replaced by real ids.
    page = await phi.http.get(
        f"/fhir/Patient/{patient_id}/$everything?_type=Encounter,Observation&_count=200",
        headers=phi.headers(),
    )
    assert page.status_code == 200, page.text
    for entry in page.json()["entry"]:
        text = json.dumps(entry["resource"])
        assert "urn:uuid:" not in text
        assert "?identifier=" not in text


async def test_synthea_run_imports(phi: PhiHarness) -> None:
    # The run's information bundles (batches with ifNoneExist) come first: the patients refer to them.
    for info in sorted(SYNTHEA.glob("hospitalInformation*.json")) + sorted(
        SYNTHEA.glob("practitionerInformation*.json")
    ):
        await _import(phi, info)
    patients = sorted(
        p for p in SYNTHEA.glob("*.json") if not p.name.startswith(("hospital", "practitioner"))
    )
    assert len(patients) == 3
    for path in patients:
        await _check_patient(phi, path)


async def test_synthea_2019_bundles_import(phi: PhiHarness) -> None:
    paths = sorted(SYNTHEA_2019.glob("*.json"))
    assert len(paths) == 3
    for path in paths:
        await _check_patient(phi, path)


def _hl7_examples() -> list[Path]:
    return sorted(
        p
        for p in HL7.glob("*.json")
        if p.name != "package.json"
        and _load(p)["resourceType"] not in ("Bundle", "OperationOutcome")
    )


def _without(resource: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in names}


async def test_hl7_examples_round_trip(phi: PhiHarness) -> None:
    examples = _hl7_examples()
    assert len(examples) >= 15
    for path in examples:
        original = _load(path)
        url = f"/fhir/{original['resourceType']}"

        put = await phi.http.put(f"{url}/{original['id']}", json=original, headers=phi.headers())
        assert put.status_code == 201, f"{path.name}: {put.text}"
        read = await phi.http.get(f"{url}/{original['id']}", headers=phi.headers())
        assert _without(read.json(), "meta") == _without(original, "meta"), path.name

        posted = await phi.http.post(url, json=_without(original, "id"), headers=phi.headers())
        assert posted.status_code == 201, f"{path.name}: {posted.text}"
        again = await phi.http.get(f"{url}/{posted.json()['id']}", headers=phi.headers())
        assert _without(again.json(), "meta", "id") == _without(original, "meta", "id"), path.name
