"""Mapping templates: the built-ins, a deployment's own, and the preview endpoint; every
Observation a template makes validates as FHIR R4 (phi-service's validator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medmesh.devices.normalization.templates import TemplateError, TemplateSet
from medmesh.phi.fhir.r4 import validate
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import DevicesHarness, devices_settings_for, run_devices

SAMPLES: dict[str, dict[str, Any]] = {
    "heart-rate": {"value": 72, "unit": "/min"},
    "oxygen-saturation": {"value": 97, "unit": "%"},
    "blood-pressure": {"value": {"systolic": 120, "diastolic": 80}, "unit": "mm[Hg]"},
    "body-temperature": {"value": 98.6, "unit": "[degF]"},
    "respiratory-rate": {"value": 16, "unit": "/min"},
    "body-weight": {"value": 154, "unit": "[lb_av]"},
    "glucose": {"value": 5.5, "unit": "mmol/L"},
    "steps": {"value": 1200, "unit": "{steps}"},
}


async def preview(devices: DevicesHarness, name: str, **sample: Any) -> dict[str, Any]:
    result: dict[str, Any] = await devices.ok(
        "POST",
        f"/v1/templates/{name}/$preview",
        json=sample,
        headers=devices.headers("devices:read"),
    )
    return result


async def test_every_built_in_template_makes_valid_r4(devices: DevicesHarness) -> None:
    listed = await devices.ok("GET", "/v1/templates")
    assert sorted(t["name"] for t in listed["data"]) == sorted(SAMPLES)
    for name, sample in SAMPLES.items():
        result = await preview(
            devices, name, **sample, patient="Patient/p1", timestamp="2026-03-01T08:00:00Z"
        )
        observation = result["observation"]
        assert validate(observation) == [], (name, observation)
        assert observation["subject"] == {"reference": "Patient/p1"}
        assert observation["effectiveDateTime"] == "2026-03-01T08:00:00+00:00"
        assert observation["identifier"] == [
            {"system": "urn:medmesh:device-reading", "value": "dev_example:example-1"}
        ]


async def test_blood_pressure_is_a_panel_with_two_components(devices: DevicesHarness) -> None:
    result = await preview(devices, "blood-pressure", **SAMPLES["blood-pressure"])
    observation = result["observation"]
    assert observation["code"]["coding"] == [
        {
            "system": "http://loinc.org",
            "code": "85354-9",
            "display": "Blood pressure panel with all children optional",
        }
    ]
    assert "valueQuantity" not in observation
    assert [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]) for c in observation["component"]
    ] == [
        (
            "8480-6",
            {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        ),
        (
            "8462-4",
            {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        ),
    ]
    assert observation["category"][0]["coding"][0]["code"] == "vital-signs"


async def test_units_in_the_preview(devices: DevicesHarness) -> None:
    temperature = await preview(devices, "body-temperature", value=98.6, unit="[degF]")
    assert temperature["reading"]["value"] == pytest.approx(37.0)
    assert temperature["observation"]["valueQuantity"] == {
        "value": 37.0,
        "unit": "C",
        "system": "http://unitsofmeasure.org",
        "code": "Cel",
    }
    glucose = await preview(devices, "glucose", value=5.5, unit="mmol/L")
    assert glucose["observation"]["valueQuantity"]["value"] == 99
    assert glucose["observation"]["valueQuantity"]["code"] == "mg/dL"
    weight = await preview(devices, "body-weight", value=154, unit="[lb_av]")
    assert weight["observation"]["valueQuantity"]["value"] == 69.85


async def test_bad_previews(devices: DevicesHarness) -> None:
    headers = devices.headers("devices:read")
    cases = [
        ("heart-rate", {"value": 72, "unit": "bpm"}, 400, "unknown_unit"),
        ("heart-rate", {"value": 900, "unit": "/min"}, 400, "implausible_value"),
        ("heart-rate", {"value": 72, "unit": "/min", "patient": "Group/1"}, 400, "invalid_sample"),
        ("nope", {"value": 72, "unit": "/min"}, 404, "template_not_found"),
        ("heart-rate", {"unit": "/min"}, 400, "invalid_request"),
    ]
    for name, body, status, code in cases:
        response = await devices.http.post(
            f"/v1/templates/{name}/$preview", json=body, headers=headers
        )
        assert response.status_code == status, response.text
        assert response.json()["code"] == code
    missing = await devices.http.get("/v1/templates/nope", headers=headers)
    assert missing.status_code == 404


async def test_a_deployment_template_replaces_the_built_in_one(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    glucose = {
        "name": "glucose-molar",
        "metric": "glucose",
        "category": "laboratory",
        "code": {
            "system": "http://loinc.org",
            "code": "15074-8",
            "display": "Glucose [Moles/volume] in Blood",
        },
        "unit": "mmol/L",
        "unit_display": "mmol/L",
        "decimals": 1,
    }
    (folder / "glucose.json").write_text(json.dumps(glucose))
    settings = devices_settings_for(database_url, tmp_path, template_dir=folder)
    async with run_devices(settings, token_factory, database_templates) as devices:
        listed = await devices.ok("GET", "/v1/templates")
        names = [t["name"] for t in listed["data"]]
        assert "glucose-molar" in names
        assert "glucose" not in names
        result = await preview(devices, "glucose-molar", value=99, unit="mg/dL")
        assert result["observation"]["valueQuantity"] == {
            "value": 5.5,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        }
        assert result["observation"]["code"]["coding"][0]["code"] == "15074-8"
        assert validate(result["observation"]) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "mapping template bad.json"),
        ('{"name": "x", "metric": "mood"}', "mapping template bad.json"),
    ],
)
def test_a_bad_template_file_stops_the_start(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(TemplateError, match=message):
        TemplateSet.load(tmp_path)


def test_a_template_must_fit_its_metric(tmp_path: Path) -> None:
    base = json.loads(
        (
            Path(__file__).parents[2]
            / "src/medmesh/devices/normalization/templates/heart-rate.json"
        ).read_text()
    )
    changes: list[tuple[dict[str, Any], str]] = [
        ({"unit": "kg"}, "unit: for heart_rate one of"),
        (
            {"components": [{"value": "systolic", "code": {"system": "s", "code": "c"}}]},
            "components",
        ),
    ]
    for change, message in changes:
        (tmp_path / "bad.json").write_text(json.dumps({**base, **change}))
        with pytest.raises(TemplateError, match=message):
            TemplateSet.load(tmp_path)
    with pytest.raises(TemplateError, match="is not a directory"):
        TemplateSet.load(tmp_path / "missing")
