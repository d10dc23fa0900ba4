"""Which readings a query covers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement

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
        clauses = [ReadingRow.ts >= self.start, ReadingRow.ts < self.end]
        if self.device_id is not None:
            clauses.append(ReadingRow.device_id == self.device_id)
        if self.patient_ref is not None:
            clauses.append(ReadingRow.patient_ref == self.patient_ref)
        if self.bound_patient is not None:
            clauses.append(ReadingRow.patient_ref == self.bound_patient)
        if self.metric is not None:
            clauses.append(ReadingRow.metric == self.metric)
        return clauses
