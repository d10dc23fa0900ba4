"""Which readings a query covers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from medmesh.devices.models import ReadingRow


class Window:
    """Which readings a query covers: one device's or one patient's, a metric, [start, end),
    narrowed to one patient for a patient-bound caller."""

    def __init__(
        self,
        *,
        device_id: str | None,
        patient_ref: str | None,
        metric: str | None,
        start: datetime,
        end: datetime,
        bound_patient: str | None,
    ) -> None:
        self.device_id = device_id
        self.patient_ref = patient_ref
        self.metric = metric
        self.start = start
        self.end = end
        self.bound_patient = bound_patient

    def where(self) -> list[ColumnElement[bool]]:
        """The window's conditions on the rows of ``readings``."""
        return [
            ReadingRow.ts >= self.start,
            ReadingRow.ts < self.end,
            *self.owners(ReadingRow.device_id, ReadingRow.patient_ref, ReadingRow.metric),
        ]

    def owners(
        self,
        device_id: ColumnElement[str] | InstrumentedAttribute[str],
        patient_ref: ColumnElement[str | None] | InstrumentedAttribute[str | None],
        metric: ColumnElement[str] | InstrumentedAttribute[str],
    ) -> list[ColumnElement[bool]]:
        """The window's device, patient and metric as conditions on these columns (a reading's
        or a chunk's)."""
        clauses = []
        if self.device_id is not None:
            clauses.append(device_id == self.device_id)
        if self.patient_ref is not None:
            clauses.append(patient_ref == self.patient_ref)
        if self.bound_patient is not None:
            clauses.append(patient_ref == self.bound_patient)
        if self.metric is not None:
            clauses.append(metric == self.metric)
        return clauses
