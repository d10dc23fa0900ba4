"""The patient generator: patient ``i`` of a run from (options, ``i``) alone.

Each patient has its own ``random.Random`` seeded from (run seed, index) with blake2b, so a
patient never depends on which patients were generated before it or by which worker — that is
what makes 1 and N workers byte-identical. Ids are UUIDs drawn from the same stream.
"""

from __future__ import annotations

from bisect import bisect
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from random import Random
from typing import Any, Literal

from medmesh.synthetic.engine.catalog.conditions import CONDITIONS, OTHER_KEYS
from medmesh.synthetic.engine.catalog.population import AGE_PYRAMID, ANNUAL_MORTALITY
from medmesh.synthetic.engine.catalog.terminology import (
    ACTIVE,
    ALLERGIES,
    ALLERGY_ACTIVE,
    ALLERGY_CONFIRMED,
    CONFIRMED,
    META,
    PROBLEM_LIST,
    RESOLVED,
)
from medmesh.synthetic.engine.clinical_codes import CONDITION_CODES, MEDICATIONS
from medmesh.synthetic.engine.demographics import choose_state, patient_resource
from medmesh.synthetic.engine.directory import Directory, build_directory
from medmesh.synthetic.engine.ids import derived_seed, uuid_factory
from medmesh.synthetic.engine.measurements import Body
from medmesh.synthetic.engine.options import MAX_AGE, GenerationOptions
from medmesh.synthetic.engine.prevalence import (
    cohort_age_weights,
    onset_age,
    sample_conditions,
)
from medmesh.synthetic.engine.records import PatientRecord
from medmesh.synthetic.engine.timeline import DAYS_PER_YEAR, schedule

Json = dict[str, Any]

#: Report bands (CDC's usual ones): (first age, last age, label).
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 17, "0-17"),
    (18, 44, "18-44"),
    (45, 64, "45-64"),
    (65, MAX_AGE + 1, "65+"),
)


def age_band(age: int) -> str:
    """The report band of ``age``."""
    for first, last, label in AGE_BANDS:
        if first <= age <= last:
            return label
    return AGE_BANDS[-1][2]


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What the realism report and the tests need to know about a patient."""

    index: int
    #: age in whole years at the reference date, or at death
    age: int
    sex: str
    age_band: str
    #: condition keys recorded by the reference date (or death)
    conditions: frozenset[str]
    deceased: bool
    #: the cohort condition the patient was generated for, None for the general population
    cohort: str | None
    mean_systolic: float | None
    mean_diastolic: float | None
    #: latest adult BMI and HbA1c (%) measured
    bmi: float | None
    hba1c: float | None
    resource_count: int


@dataclass(frozen=True, slots=True)
class SyntheticPatient:
    """A generated patient: the Patient resource first, then its own resources.

    The resources share coding dicts with every other patient: serialize them, never mutate
    them (copy first)."""

    index: int
    patient_id: str
    resources: list[Json]
    facts: PatientFacts


def _pyramid() -> dict[tuple[int, bool], float]:
    """Population (millions) per single year of age and sex."""
    weights: dict[tuple[int, bool], float] = {}
    for position, (first, male, female) in enumerate(AGE_PYRAMID):
        last = AGE_PYRAMID[position + 1][0] if position + 1 < len(AGE_PYRAMID) else MAX_AGE + 1
        for age in range(first, last):
            weights[(age, False)] = male / (last - first)
            weights[(age, True)] = female / (last - first)
    return weights


_PYRAMID = _pyramid()


def _mortality(age: int, female: bool) -> float:
    rate = ANNUAL_MORTALITY[0][2 if female else 1]
    for first, male, fem in ANNUAL_MORTALITY:
        if age >= first:
            rate = fem if female else male
    return rate


_MORTALITY = tuple(tuple(_mortality(a, f) for a in range(MAX_AGE + 2)) for f in (False, True))


class PatientGenerator:
    """Generates the patients (and the shared directory) of one run."""

    def __init__(self, options: GenerationOptions) -> None:
        self.options = options
        self.reference = options.reference_date.toordinal()
        self._first_day = self.reference - int((MAX_AGE + 2) * DAYS_PER_YEAR)
        self._date_cache: dict[int, str] = {}
        sexes = (
            (False, True)
            if options.sex is None
            else ((True,) if options.sex == "female" else (False,))
        )
        ages = range(options.age_min, options.age_max + 1)
        self._strata: dict[str | None, tuple[list[tuple[int, bool]], list[float]]] = {
            None: cohort_age_weights(None, ages, sexes, _PYRAMID)
        }
        for cohort in options.cohorts:
            self._strata[cohort.condition] = cohort_age_weights(
                cohort.condition, ages, sexes, _PYRAMID
            )
        bounds, total = [], 0
        for cohort in options.cohorts:
            total += cohort.count
            bounds.append((total, cohort.condition))
        self._cohort_bounds = bounds
        self._mrn_prefix = f"{derived_seed(options.seed, 'mrn') % 10000:04d}"

    @cached_property
    def _directory(self) -> Directory:
        return build_directory(self.options.seed, self.options.state)

    def directory(self) -> list[Json]:
        """The run's Organizations, Locations, Practitioners and PractitionerRoles."""
        return self._directory.resources

    def _date(self, day: int) -> str:
        text = self._date_cache.get(day)
        if text is None:
            text = self._date_cache[day] = date.fromordinal(day).isoformat()
        return text

    def cohort_of(self, index: int) -> str | None:
        """The cohort condition of patient ``index`` (None for the general population)."""
        for bound, condition in self._cohort_bounds:
            if index < bound:
                return condition
        return None

    def patient(
        self, index: int, references: Literal["plain", "urn"] = "plain"
    ) -> SyntheticPatient:
        """Patient ``index`` (0 ≤ index < size) with its record."""
        options = self.options
        if not 0 <= index < options.size:
            raise IndexError(f"patient index {index} is outside 0..{options.size - 1}")
        # One stream per patient, reproducible on purpose (synthetic data, not secrets).
        rng = Random(derived_seed(options.seed, index))  # noqa: S311
        new_id = uuid_factory(rng)
        cohort = self.cohort_of(index)
        strata, cumulative = self._strata[cohort]
        age, female = strata[bisect(cumulative, rng.random() * cumulative[-1])]
        reference = self.reference
        birth = reference - int((age + rng.random()) * DAYS_PER_YEAR)
        history_start = reference - int(options.years_of_history * DAYS_PER_YEAR)
        start = max(history_start, birth)
        death = self._death(rng, birth, start, female)
        end = death if death is not None else reference
        record_age = int((end - birth) / DAYS_PER_YEAR)
        if cohort is not None and not CONDITIONS[cohort].prevalence(record_age, female) > 0:
            death, end, record_age = None, reference, age  # the cohort member survives
        draws = [rng.random() for _ in OTHER_KEYS]
        keys = sample_conditions(record_age, female, cohort, rng.random(), draws)
        onsets: dict[str, int] = {}
        for key in keys:
            years = onset_age(key, female, record_age, rng.random(), rng.random())
            onsets[key] = min(end, birth + int(years * DAYS_PER_YEAR))
        prefix = "urn:uuid:" if references == "urn" else ""

        def own_prefix(resource_type: str) -> str:
            return prefix or f"{resource_type}/"

        patient_id = new_id()
        subject = {"reference": own_prefix("Patient") + patient_id}
        state = choose_state(rng, options.state)
        hospital, clinic = self._directory.sites[state]
        doctor = int(rng.random() * len(clinic.participants))
        dates = self._date
        patient = patient_resource(
            rng,
            patient_id=patient_id,
            female=female,
            birth_date=dates(birth),
            birth_year=date.fromordinal(birth).year,
            deceased=dates(death) if death is not None else None,
            state=state,
            mrn=f"SYN{self._mrn_prefix}{index + 1:09d}",
            meta=META,
            practitioner=clinic.practitioner_refs[doctor],
            organization=clinic.service_provider,
        )
        resources: list[Json] = [patient]
        resources += self._allergies(rng, new_id, subject, birth, start, end)
        condition_ids: dict[str, str] = {}
        for key in keys:
            spec = CONDITIONS[key]
            if spec.resolves_days and onsets[key] >= start:
                continue  # recorded at the visit where it is diagnosed
            condition_id = condition_ids[key] = new_id()
            resolved = spec.resolves_days and onsets[key] + spec.resolves_days <= end
            condition: Json = {
                "resourceType": "Condition",
                "id": condition_id,
                "meta": META,
                "clinicalStatus": RESOLVED if resolved else ACTIVE,
                "verificationStatus": CONFIRMED,
                "category": PROBLEM_LIST,
                "code": CONDITION_CODES[key],
                "subject": subject,
                "onsetDateTime": dates(onsets[key]),
                "recordedDate": dates(max(onsets[key], start)),
            }
            if resolved:
                condition["abatementDateTime"] = dates(onsets[key] + spec.resolves_days)
            resources.append(condition)
        medications = {
            key: self._drugs(rng, key) for key in keys if rng.random() < CONDITIONS[key].treated
        }
        record = PatientRecord(
            rng=rng,
            new_id=new_id,
            meta=META,
            own_prefix=own_prefix,
            subject=subject,
            birth=birth,
            end=end,
            deceased=death is not None,
            female=female,
            onsets=onsets,
            condition_ids=condition_ids,
            medications={k: v for k, v in medications.items() if v},
            body=Body(rng, female, set(keys)),
            sites=(hospital, clinic),
            doctor=doctor,
            dates=dates,
        )
        for visit in schedule(rng, birth, onsets, start, end):
            record.visit(visit)
        record.finish()
        resources += record.resources
        systolic, diastolic = record.systolic, record.diastolic
        facts = PatientFacts(
            index=index,
            age=record_age,
            sex="female" if female else "male",
            age_band=age_band(record_age),
            conditions=frozenset(keys),
            deceased=death is not None,
            cohort=cohort,
            mean_systolic=sum(systolic) / len(systolic) if systolic else None,
            mean_diastolic=sum(diastolic) / len(diastolic) if diastolic else None,
            bmi=record.bmi,
            hba1c=record.hba1c,
            resource_count=len(resources),
        )
        return SyntheticPatient(index, patient_id, resources, facts)

    def _death(self, rng: Random, birth: int, start: int, female: bool) -> int | None:
        """The day of death within the window, by age-specific annual mortality (or None)."""
        table = _MORTALITY[female]
        day = start
        while day < self.reference:
            age = int((day - birth) / DAYS_PER_YEAR)
            if rng.random() < table[min(age, MAX_AGE + 1)]:
                return min(day + int(rng.random() * 365), self.reference - 1)
            day += 365
        return None

    @staticmethod
    def _drugs(rng: Random, key: str) -> list[Json]:
        choices = MEDICATIONS[key]
        if not choices:
            return []
        drugs = [choices[0] if rng.random() < 0.7 else rng.choice(choices)]
        if key == "hypertension" and len(choices) > 1 and rng.random() < 0.3:
            second = rng.choice(choices)
            if second is not drugs[0]:
                drugs.append(second)
        return drugs

    def _allergies(
        self, rng: Random, new_id: Any, subject: Json, birth: int, start: int, end: int
    ) -> list[Json]:
        found: list[Json] = []
        for substance, category, criticality, share, manifestation in ALLERGIES:
            if rng.random() >= share:
                continue
            onset = birth + int(rng.random() * (end - birth))
            found.append(
                {
                    "resourceType": "AllergyIntolerance",
                    "id": new_id(),
                    "meta": META,
                    "clinicalStatus": ALLERGY_ACTIVE,
                    "verificationStatus": ALLERGY_CONFIRMED,
                    "type": "allergy",
                    "category": [category],
                    "criticality": criticality,
                    "code": substance,
                    "patient": subject,
                    "onsetDateTime": self._date(onset),
                    "recordedDate": self._date(max(onset, start)),
                    "reaction": [{"manifestation": [manifestation]}],
                }
            )
        return found
