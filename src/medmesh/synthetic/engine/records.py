"""The patient's clinical record: one Encounter per visit with what happened at it.

This is the engine's hot path (most of a patient's resources are made here), so it is written
for speed: codings are the shared dicts of :mod:`.catalog.terminology` (never copied, never
mutated), dates are preformatted strings, normal draws come from a table, and no model objects
are built — resources are plain dicts ready for ``orjson``.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from medmesh.synthetic.engine.catalog.conditions import CONDITIONS
from medmesh.synthetic.engine.catalog.terminology import (
    ENCOUNTER_TYPES,
    LABORATORY,
    LIPID_PANEL,
    METABOLIC_PANEL,
    OBSERVATIONS,
    VITAL_SIGNS,
)
from medmesh.synthetic.engine.clinical_codes import (
    ACUTE_PROBLEMS,
    CONDITION_CODES,
    EMERGENCY_SLOTS,
    OFFICE_SLOTS,
)
from medmesh.synthetic.engine.directory import CareSite
from medmesh.synthetic.engine.measurements import (
    NORMAL,
    Body,
    creatinine_for,
    egfr_for,
    glucose_for,
    heart_rate,
    respiratory_rate,
    round1,
)
from medmesh.synthetic.engine.resource_writer import Json, RecordWriter
from medmesh.synthetic.engine.timeline import DAYS_PER_YEAR, Visit
from medmesh.synthetic.engine.vaccines import immunizations_due

_HEIGHT, _WEIGHT, _BMI = OBSERVATIONS["height"], OBSERVATIONS["weight"], OBSERVATIONS["bmi"]
_HR, _RR = OBSERVATIONS["heart_rate"], OBSERVATIONS["respiratory_rate"]
_TEMPERATURE, _SPO2 = OBSERVATIONS["temperature"], OBSERVATIONS["spo2"]
_CHOLESTEROL, _LDL, _HDL = OBSERVATIONS["cholesterol"], OBSERVATIONS["ldl"], OBSERVATIONS["hdl"]
_TRIGLYCERIDES, _HBA1C = OBSERVATIONS["triglycerides"], OBSERVATIONS["hba1c"]
_GLUCOSE, _CREATININE, _EGFR = (
    OBSERVATIONS["glucose"],
    OBSERVATIONS["creatinine"],
    OBSERVATIONS["egfr"],
)
#: Days between labs (USPSTF/ADA/KDIGO-style intervals): lipids every 5 years, every 2 with
#: cardiometabolic disease; the metabolic panel every 3 years, every 2 with hypertension, yearly
#: with diabetes or kidney disease; HbA1c screening every 3 years (at each visit for diabetics).
_LIPIDS_EVERY, _LIPIDS_AT_RISK = 5 * 365 - 30, 2 * 365 - 30
_PANEL_EVERY, _PANEL_HYPERTENSION, _PANEL_AT_RISK = 3 * 365 - 30, 2 * 365 - 30, 335
_A1C_SCREEN_EVERY = 3 * 365 - 30
_NEVER = -(10**9)


class PatientRecord(RecordWriter):
    """Builds one patient's dated resources; call :meth:`visit` for each visit in order."""

    def __init__(
        self,
        *,
        rng: Random,
        new_id: Callable[[], str],
        meta: Json,
        own_prefix: Callable[[str], str],
        subject: Json,
        birth: int,
        end: int,
        deceased: bool,
        female: bool,
        onsets: dict[str, int],
        condition_ids: dict[str, str],
        medications: dict[str, list[Json]],
        body: Body,
        sites: tuple[CareSite, CareSite],
        doctor: int,
        dates: Callable[[int], str],
    ) -> None:
        super().__init__(
            rng=rng,
            new_id=new_id,
            meta=meta,
            own_prefix=own_prefix,
            subject=subject,
            end=end,
            dates=dates,
        )
        self.birth, self.deceased, self.female = birth, deceased, female
        self.onsets, self.condition_ids, self.medications = onsets, condition_ids, medications
        self.body, self.doctor = body, doctor
        self.hospital, self.clinic = sites
        self.latest_prescription: dict[str, tuple[int, Json, bool]] = {}
        self.systolic: list[int] = []
        self.diastolic: list[int] = []
        self.bmi: float | None = None
        self.hba1c: float | None = None
        self.given: set[str] = set()
        self.last_lipids = self.last_panel = self.last_a1c = _NEVER

    def _prescribe(self, day: int, encounter: Json, when: str, requester: Json) -> None:
        """Start or renew (yearly) the medications of the chronic conditions present."""
        onsets, latest = self.onsets, self.latest_prescription
        for key, drugs in self.medications.items():
            if onsets[key] > day or CONDITIONS[key].resolves_days:
                continue
            for drug in drugs:
                previous = latest.get(drug["text"])
                if previous is None or day - previous[0] >= 330:
                    self._prescription(drug, key, day, encounter, when, requester, chronic=True)

    def _prescription(
        self,
        drug: Json,
        key: str,
        day: int,
        encounter: Json,
        when: str,
        requester: Json,
        *,
        chronic: bool,
    ) -> None:
        request = self._medication_request(
            drug, self.condition_ids[key], encounter, when, requester
        )
        self.latest_prescription[drug["text"]] = (day, request, chronic)

    def _blood_pressure(self, age: float, hypertensive: bool, encounter: Json, when: str) -> None:
        systolic, diastolic = self.body.blood_pressure(age, hypertensive, self.rng)
        self.systolic.append(systolic)
        self.diastolic.append(diastolic)
        self._blood_pressure_panel(systolic, diastolic, encounter, when)

    def visit(self, visit: Visit) -> None:
        """Add the Encounter of ``visit`` and everything recorded at it."""
        day, kind, detail = visit
        rng = self.rng
        emergency = kind == "emergency"
        site = self.hospital if emergency else self.clinic
        doctor = int(rng.random() * len(site.participants)) if emergency else self.doctor
        slots = EMERGENCY_SLOTS if emergency else OFFICE_SLOTS
        start, finish = slots[int(rng.random() * len(slots))]
        date = self.dates(day)
        when = date + start
        encounter_id = self.new_id()
        encounter_class, encounter_type = ENCOUNTER_TYPES[kind]
        resource: Json = {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": self.meta,
            "status": "finished",
            "class": encounter_class,
            "type": encounter_type,
            "subject": self.subject,
            "participant": site.participants[doctor],
            "period": {"start": when, "end": date + finish},
        }
        self.resources.append(resource)
        reference = {"reference": self.encounter_prefix + encounter_id}
        active = {key for key, onset in self.onsets.items() if onset <= day}
        age = (day - self.birth) / DAYS_PER_YEAR
        requester = site.practitioner_refs[doctor]
        if emergency:
            code, days = ACUTE_PROBLEMS[int(rng.random() * len(ACUTE_PROBLEMS))]
            resource["reasonCode"] = [code]
            self._finish_encounter(resource, site)
            self._diagnosis(code, day, day + days, reference)
            self._vitals(age, active, reference, when, full=False)
        elif kind == "problem":
            key = str(detail)
            resource["reasonCode"] = [CONDITION_CODES[key]]
            self._finish_encounter(resource, site)
            self.condition_ids[key] = self._diagnosis(
                CONDITION_CODES[key], day, day + CONDITIONS[key].resolves_days, reference
            )
            fever = round1(38.2 + rng.random())
            self._quantity(_TEMPERATURE, fever, reference, when, VITAL_SIGNS)
            for drug in self.medications.get(key, ()):
                self._prescription(drug, key, day, reference, when, requester, chronic=False)
        elif kind == "follow_up":
            resource["reasonCode"] = [
                CONDITION_CODES[key] for key in sorted(active) if CONDITIONS[key].follow_up
            ]
            self._finish_encounter(resource, site)
            self._follow_up(day, age, active, reference, when)
            self._prescribe(day, reference, when, requester)
        else:
            self._finish_encounter(resource, site)
            self._wellness(day, age, active, reference, when, int(detail))
            self._prescribe(day, reference, when, requester)

    @staticmethod
    def _finish_encounter(resource: Json, site: CareSite) -> None:
        resource["location"] = site.locations
        resource["serviceProvider"] = site.service_provider

    def _vitals(self, age: float, active: set[str], encounter: Json, when: str, full: bool) -> None:
        """Vital signs: the full panel with growth measures at wellness visits, the acute set
        (no height or weight) at emergency visits; well-child visits skip SpO2, and the
        respiratory rate after infancy."""
        rng, body, quantity = self.rng, self.body, self._quantity
        child = age < 18
        if full:
            height = body.height(age)
            weight = body.weight(age, height, "obesity" in active)
            quantity(_HEIGHT, round1(height), encounter, when, VITAL_SIGNS)
            quantity(_WEIGHT, round1(weight), encounter, when, VITAL_SIGNS)
            if age >= 2:
                bmi = round1(weight / (height * height) * 10000)
                quantity(_BMI, bmi, encounter, when, VITAL_SIGNS)
                if not child:
                    self.bmi = bmi
        if age >= 3:
            self._blood_pressure(age, "hypertension" in active, encounter, when)
        quantity(_HR, heart_rate(age, "afib" in active, rng), encounter, when, VITAL_SIGNS)
        if not (full and child) or age < 3:
            quantity(_RR, respiratory_rate(age, rng), encounter, when, VITAL_SIGNS)
        fever = 0.0 if full else rng.random() * 1.4
        temperature = round1(36.5 + rng.random() * 0.6 + fever)
        quantity(_TEMPERATURE, temperature, encounter, when, VITAL_SIGNS)
        if not (full and child):
            spo2 = 91 + int(rng.random() * 5) if "copd" in active else 96 + int(rng.random() * 4)
            quantity(_SPO2, spo2, encounter, when, VITAL_SIGNS)

    def _wellness(
        self, day: int, age: float, active: set[str], encounter: Json, when: str, month: int
    ) -> None:
        rng = self.rng
        self._vitals(age, active, encounter, when, full=True)
        for vaccine in immunizations_due(rng, age, month, self.given):
            self._immunization(vaccine, encounter, when)
        if age < 18:
            return
        if rng.random() < 0.5:
            self._procedure("depression_screening", encounter, when)
        if self.female and 50 <= age < 75 and rng.random() < 0.6:
            self._procedure("mammography", encounter, when)
        if 45 <= age < 76 and rng.random() < 0.1:
            self._procedure("colonoscopy", encounter, when)
        self._labs(day, age, active, encounter, when)

    def _follow_up(
        self, day: int, age: float, active: set[str], encounter: Json, when: str
    ) -> None:
        rng = self.rng
        if age >= 3:
            self._blood_pressure(age, "hypertension" in active, encounter, when)
        height = self.body.height(age)
        weight = self.body.weight(age, height, "obesity" in active)
        self._quantity(_WEIGHT, round1(weight), encounter, when, VITAL_SIGNS)
        if "diabetes" in active:
            self._hba1c(day, True, encounter, when)
        if "ckd" in active and day - self.last_panel >= _PANEL_AT_RISK:
            self._metabolic_panel(day, age, active, encounter, when)
        if ("afib" in active or "chd" in active) and rng.random() < 0.3:
            self._procedure("ecg", encounter, when)
        if ("copd" in active or "asthma" in active) and rng.random() < 0.2:
            self._procedure("spirometry", encounter, when)
        if self.medications and rng.random() < 0.3:
            self._procedure("medication_reconciliation", encounter, when)

    def _labs(self, day: int, age: float, active: set[str], encounter: Json, when: str) -> None:
        """The screening labs of an adult wellness visit, when they are due."""
        at_risk = not active.isdisjoint(("diabetes", "hyperlipidemia", "chd", "ckd"))
        if day - self.last_lipids >= (_LIPIDS_AT_RISK if at_risk else _LIPIDS_EVERY):
            self._lipid_panel(day, encounter, when)
        diabetic = "diabetes" in active
        if diabetic or (
            ("obesity" in active or age >= 35) and day - self.last_a1c >= _A1C_SCREEN_EVERY
        ):
            self._hba1c(day, diabetic, encounter, when)
        if "diabetes" in active or "ckd" in active:
            interval = _PANEL_AT_RISK
        else:
            interval = _PANEL_HYPERTENSION if "hypertension" in active else _PANEL_EVERY
        if day - self.last_panel >= interval:
            self._metabolic_panel(day, age, active, encounter, when)

    def _lipid_panel(self, day: int, encounter: Json, when: str) -> None:
        self.last_lipids = day
        bits, body, quantity = self.rng.getrandbits, self.body, self._quantity
        ldl = max(40.0, body.ldl + 10 * NORMAL[bits(12)])
        hdl = max(22.0, body.hdl + 4 * NORMAL[bits(12)])
        triglycerides = max(40.0, body.triglycerides + 20 * NORMAL[bits(12)])
        total = int(ldl + hdl + triglycerides / 5)  # Friedewald
        results = [
            quantity(_CHOLESTEROL, total, encounter, when, LABORATORY),
            quantity(_LDL, int(ldl), encounter, when, LABORATORY),
            quantity(_HDL, int(hdl), encounter, when, LABORATORY),
            quantity(_TRIGLYCERIDES, int(triglycerides), encounter, when, LABORATORY),
        ]
        self._report(LIPID_PANEL, results, encounter, when)

    def _current_hba1c(self, diabetic: bool) -> float:
        base = self.body.hba1c
        if diabetic:
            value = base + 0.3 * NORMAL[self.rng.getrandbits(12)]
            return round1(4.2 if value < 4.2 else (13.5 if value > 13.5 else value))
        value = base + 0.1 * NORMAL[self.rng.getrandbits(12)]
        return round1(4.2 if value < 4.2 else (6.4 if value > 6.4 else value))

    def _hba1c(self, day: int, diabetic: bool, encounter: Json, when: str) -> None:
        self.last_a1c = day
        value = self.hba1c = self._current_hba1c(diabetic)
        self._quantity(_HBA1C, value, encounter, when, LABORATORY)

    def _metabolic_panel(
        self, day: int, age: float, active: set[str], encounter: Json, when: str
    ) -> None:
        self.last_panel = day
        rng, body, quantity, female = self.rng, self.body, self._quantity, self.female
        hba1c = self.hba1c if self.hba1c is not None else self._current_hba1c("diabetes" in active)
        creatinine = round(creatinine_for(body.egfr(age, "ckd" in active), age, female), 2)
        egfr = int(egfr_for(creatinine, age, female))
        results = [
            quantity(_GLUCOSE, glucose_for(hba1c, rng), encounter, when, LABORATORY),
            quantity(_CREATININE, creatinine, encounter, when, LABORATORY),
            quantity(_EGFR, egfr, encounter, when, LABORATORY),
        ]
        self._report(METABOLIC_PANEL, results, encounter, when)

    def finish(self) -> None:
        """Mark each chronic medication's latest prescription active (while the patient lives)."""
        if self.deceased:
            return
        for _, request, chronic in self.latest_prescription.values():
            if chronic:
                request["status"] = "active"
