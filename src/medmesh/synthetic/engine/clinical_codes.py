"""Shared, prebuilt pieces of the clinical record: condition codes, acute problems, medication
concepts and visit time slots. Built once at import; never mutated."""

from __future__ import annotations

from typing import Any

from medmesh.synthetic.engine.catalog import terminology
from medmesh.synthetic.engine.catalog.conditions import CONDITIONS
from medmesh.synthetic.engine.catalog.terminology import condition_code, medication

Json = dict[str, Any]

#: condition key -> Condition.code (SNOMED CT and ICD-10-CM codings)
CONDITION_CODES: dict[str, Json] = {
    key: condition_code(spec.snomed, spec.icd10) for key, spec in CONDITIONS.items()
}
#: (Condition.code, days until it resolves) of the reasons for emergency visits
ACUTE_PROBLEMS: tuple[tuple[Json, int], ...] = tuple(
    (condition_code((code, display), (icd, icd_display)), days)
    for code, display, icd, icd_display, days in terminology.ACUTE_PROBLEMS
)
#: condition key -> RxNorm medication concepts, first-line first
MEDICATIONS: dict[str, list[Json]] = {
    key: [medication(code, display) for code, display in spec.medications]
    for key, spec in CONDITIONS.items()
}
#: (start, end) time suffixes: office visits of 30 minutes from 08:00 to 16:45 (UTC)...
OFFICE_SLOTS: tuple[tuple[str, str], ...] = tuple(
    (f"T{m // 60:02d}:{m % 60:02d}:00Z", f"T{(m + 30) // 60:02d}:{(m + 30) % 60:02d}:00Z")
    for m in range(8 * 60, 17 * 60, 15)
)
#: ...and emergency visits of three and a half hours, ending the same day.
EMERGENCY_SLOTS: tuple[tuple[str, str], ...] = tuple(
    (f"T{h:02d}:10:00Z", f"T{h + 3:02d}:40:00Z") for h in range(20)
)
