"""The shapes of the resources a patient's record is made of, as plain dicts.

:class:`RecordWriter` appends each new resource to ``resources`` with a fresh id, the synthetic
``meta`` and the patient as subject; codings and references to the directory are the shared
dicts (see :mod:`.catalog.terminology`), never copies.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any

from medmesh.synthetic.engine.catalog.terminology import (
    ACTIVE,
    CONFIRMED,
    DIAGNOSIS,
    LAB_SERVICE,
    OBSERVATIONS,
    PROCEDURES,
    RESOLVED,
    UCUM,
    VACCINES,
    VITAL_SIGNS,
)

Json = dict[str, Any]
#: (LOINC concept, UCUM unit) of a quantity observation
Kind = tuple[Json, str]

_BP, _SYSTOLIC, _DIASTOLIC = (
    OBSERVATIONS["bp"][0],
    OBSERVATIONS["systolic"][0],
    OBSERVATIONS["diastolic"][0],
)
_DOSAGE = [{"sequence": 1, "text": "Take as directed"}]


class RecordWriter:
    """Appends a patient's resources to :attr:`resources`."""

    def __init__(
        self,
        *,
        rng: Random,
        new_id: Callable[[], str],
        meta: Json,
        own_prefix: Callable[[str], str],
        subject: Json,
        end: int,
        dates: Callable[[int], str],
    ) -> None:
        self.rng, self.new_id, self.meta, self.subject = rng, new_id, meta, subject
        self.encounter_prefix = own_prefix("Encounter")
        self.observation_prefix = own_prefix("Observation")
        self.condition_prefix = own_prefix("Condition")
        self.end, self.dates = end, dates
        self.resources: list[Json] = []

    def _quantity(
        self, kind: Kind, value: float, encounter: Json, when: str, category: Any
    ) -> Json:
        unit = kind[1]
        resource = {
            "resourceType": "Observation",
            "id": self.new_id(),
            "meta": self.meta,
            "status": "final",
            "category": category,
            "code": kind[0],
            "subject": self.subject,
            "encounter": encounter,
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }
        self.resources.append(resource)
        return resource

    def _report(self, code: Json, results: list[Json], encounter: Json, when: str) -> None:
        prefix = self.observation_prefix
        self.resources.append(
            {
                "resourceType": "DiagnosticReport",
                "id": self.new_id(),
                "meta": self.meta,
                "status": "final",
                "category": LAB_SERVICE,
                "code": code,
                "subject": self.subject,
                "encounter": encounter,
                "effectiveDateTime": when,
                "issued": when,
                "result": [{"reference": prefix + r["id"]} for r in results],
            }
        )

    def _procedure(self, name: str, encounter: Json, when: str) -> None:
        self.resources.append(
            {
                "resourceType": "Procedure",
                "id": self.new_id(),
                "meta": self.meta,
                "status": "completed",
                "code": PROCEDURES[name],
                "subject": self.subject,
                "encounter": encounter,
                "performedDateTime": when,
            }
        )

    def _immunization(self, vaccine: str, encounter: Json, when: str) -> None:
        self.resources.append(
            {
                "resourceType": "Immunization",
                "id": self.new_id(),
                "meta": self.meta,
                "status": "completed",
                "vaccineCode": VACCINES[vaccine],
                "patient": self.subject,
                "encounter": encounter,
                "occurrenceDateTime": when,
                "primarySource": True,
            }
        )

    def _diagnosis(self, code: Json, day: int, abates: int, encounter: Json) -> str:
        """A Condition diagnosed at this visit, resolved when its course ends by the record's
        end (never dated after it)."""
        resource_id = self.new_id()
        resource: Json = {
            "resourceType": "Condition",
            "id": resource_id,
            "meta": self.meta,
            "clinicalStatus": ACTIVE,
            "verificationStatus": CONFIRMED,
            "category": DIAGNOSIS,
            "code": code,
            "subject": self.subject,
            "encounter": encounter,
            "onsetDateTime": self.dates(day),
            "recordedDate": self.dates(day),
        }
        if abates <= self.end:
            resource["clinicalStatus"] = RESOLVED
            resource["abatementDateTime"] = self.dates(abates)
        self.resources.append(resource)
        return resource_id

    def _medication_request(
        self,
        drug: Json,
        condition_id: str,
        encounter: Json,
        when: str,
        requester: Json,
    ) -> Json:
        request = {
            "resourceType": "MedicationRequest",
            "id": self.new_id(),
            "meta": self.meta,
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": drug,
            "subject": self.subject,
            "encounter": encounter,
            "authoredOn": when,
            "requester": requester,
            "reasonReference": [{"reference": self.condition_prefix + condition_id}],
            "dosageInstruction": _DOSAGE,
        }
        self.resources.append(request)
        return request

    def _blood_pressure_panel(
        self, systolic: int, diastolic: int, encounter: Json, when: str
    ) -> None:
        unit = "mm[Hg]"
        self.resources.append(
            {
                "resourceType": "Observation",
                "id": self.new_id(),
                "meta": self.meta,
                "status": "final",
                "category": VITAL_SIGNS,
                "code": _BP,
                "subject": self.subject,
                "encounter": encounter,
                "effectiveDateTime": when,
                "component": [
                    {
                        "code": _SYSTOLIC,
                        "valueQuantity": {
                            "value": systolic,
                            "unit": unit,
                            "system": UCUM,
                            "code": unit,
                        },
                    },
                    {
                        "code": _DIASTOLIC,
                        "valueQuantity": {
                            "value": diastolic,
                            "unit": unit,
                            "system": UCUM,
                            "code": unit,
                        },
                    },
                ],
            }
        )
