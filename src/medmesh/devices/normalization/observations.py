"""A stored reading as a FHIR R4 Observation (through its metric's template), and Bundles of
them for phi-service: conditional creates keyed on the reading's identifier, so a Bundle sent
twice creates each Observation once; and each registered device as a FHIR Device."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from medmesh.devices.normalization.templates import MappingTemplate, TemplateSet

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs",
    "activity": "Activity",
    "laboratory": "Laboratory",
    "survey": "Survey",
    "exam": "Exam",
    "procedure": "Procedure",
}
#: Identifier systems of this service's readings (``<device id>:<reading id>``) and devices.
READING_SYSTEM = "urn:medmesh:device-reading"
DEVICE_SYSTEM = "urn:medmesh:device"


def reading_identifier(device_id: str, reading_id: str) -> str:
    return f"{device_id}:{reading_id}"


def fhir_device_id(device_id: str) -> str:
    """The id of the device's FHIR Device in phi-service (FHIR ids have no underscore)."""
    return device_id.replace("_", "-")


def _concept(coding: dict[str, Any]) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [coding]}
    if coding.get("display"):
        concept["text"] = coding["display"]
    return concept


class CompiledTemplate:
    """A template's fixed parts built once (they are shared by every Observation it makes, which
    are serialized, never changed)."""

    def __init__(self, template: MappingTemplate) -> None:
        self.template = template
        self.code = _concept(template.code.model_dump(exclude_none=True))
        self.category = [
            {
                "coding": [
                    {
                        "system": CATEGORY_SYSTEM,
                        "code": template.category,
                        "display": CATEGORY_DISPLAY[template.category],
                    }
                ]
            }
        ]
        self.components = [
            (part.value, _concept(part.code.model_dump(exclude_none=True)))
            for part in template.components
        ]
        self.convert = template.conversion.from_canonical
        self.decimals = template.decimals
        self.unit = {"unit": template.unit_display, "system": UCUM, "code": template.unit}

    def quantity(self, canonical: float) -> dict[str, Any]:
        value = round(self.convert(canonical), self.decimals)
        return {"value": int(value) if self.decimals == 0 else value, **self.unit}


_COMPILED: dict[int, CompiledTemplate] = {}


def compiled(template: MappingTemplate) -> CompiledTemplate:
    found = _COMPILED.get(id(template))
    if found is None or found.template is not template:
        found = _COMPILED[id(template)] = CompiledTemplate(template)
    return found


def observation(template: MappingTemplate, reading: dict[str, Any]) -> dict[str, Any]:
    """The Observation of ``reading`` (the fields of a queued reading: device_id, reading_id,
    ts, value, components, patient)."""
    parts = compiled(template)
    device_id = reading["device_id"]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": READING_SYSTEM, "value": f"{device_id}:{reading['reading_id']}"}],
        "status": "final",
        "category": parts.category,
        "code": parts.code,
        "effectiveDateTime": reading["ts"],
        "device": {"reference": f"Device/{fhir_device_id(device_id)}"},
    }
    if reading.get("patient"):
        resource["subject"] = {"reference": reading["patient"]}
    if parts.components:
        values = reading["components"]
        resource["component"] = [
            {"code": concept, "valueQuantity": parts.quantity(values[name])}
            for name, concept in parts.components
        ]
    else:
        resource["valueQuantity"] = parts.quantity(reading["value"])
    return resource


def device_resource(fields: dict[str, Any]) -> dict[str, Any]:
    """The FHIR Device of a registered device (a retired one is ``inactive``)."""
    device_id = fields["device_id"]
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": fhir_device_id(device_id),
        "identifier": [{"system": DEVICE_SYSTEM, "value": device_id}],
        "status": "active" if fields["status"] == "active" else "inactive",
    }
    if fields.get("udi"):
        resource["udiCarrier"] = [{"carrierHRF": fields["udi"]}]
    if fields.get("manufacturer"):
        resource["manufacturer"] = fields["manufacturer"]
    if fields.get("model"):
        resource["modelNumber"] = fields["model"]
    if fields.get("serial_number"):
        resource["serialNumber"] = fields["serial_number"]
    if fields.get("type_code"):
        coding = {"system": SNOMED, "code": fields["type_code"]}
        if fields.get("type_display"):
            coding["display"] = fields["type_display"]
        resource["type"] = {"coding": [coding]}
    if fields.get("firmware_version"):
        resource["version"] = [{"value": fields["firmware_version"]}]
    return resource


def transaction_bundle(templates: TemplateSet, payload: dict[str, Any]) -> dict[str, Any]:
    """The transaction Bundle of a queued message: each reading's Observation as a conditional
    create on its identifier."""
    entries: list[dict[str, Any]] = []
    for reading in payload["readings"]:
        value = reading_identifier(reading["device_id"], reading["reading_id"])
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": observation(templates.by_metric[reading["metric"]], reading),
                "request": {
                    "method": "POST",
                    "url": "Observation",
                    "ifNoneExist": "identifier=" + quote(f"{READING_SYSTEM}|{value}", safe=""),
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
