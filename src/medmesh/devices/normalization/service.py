"""Previewing a template: a sample checked as ingest checks it, then mapped."""

from __future__ import annotations

from datetime import timedelta

from medmesh.devices.delivery.messages import reading_fields
from medmesh.devices.errors import InvalidSample
from medmesh.devices.ingest.validation import Refusal, check_entry
from medmesh.devices.normalization.observations import observation
from medmesh.devices.normalization.schemas import Preview, PreviewSample
from medmesh.devices.normalization.templates import MappingTemplate
from medmesh.devices.patients import canonical_patient_ref
from medmesh.platform.db import utcnow


def preview(template: MappingTemplate, sample: PreviewSample, skew_seconds: float) -> Preview:
    now = utcnow()
    value = sample.value if isinstance(sample.value, float) else sample.value.model_dump()
    raw = {
        "device_id": sample.device_id,
        "reading_id": sample.reading_id,
        "timestamp": (sample.timestamp or now).isoformat(),
        "metric": template.metric,
        "value": value,
        "unit": sample.unit,
    }
    try:
        reading = check_entry(raw, None, now, timedelta(seconds=skew_seconds))
    except Refusal as refusal:
        raise InvalidSample(refusal.message, code=refusal.code) from None
    patient = None
    if sample.patient is not None:
        patient = canonical_patient_ref(sample.patient)
        if patient is None:
            raise InvalidSample("patient: not a Patient reference (Patient/<id>)")
    fields = reading_fields(reading, patient)
    return Preview(reading=fields, observation=observation(template, fields))
