"""The chronic conditions the engine models: codes, prevalence by age and sex, comorbidity.

Prevalence is given as anchor points ``(age, male, female)`` interpolated linearly between
anchors (held flat past the last one); the figures are rounded published US estimates, cited
per condition. They are *targets*: the engine samples each condition so that its prevalence in
a stratum of age and sex equals the interpolated figure, whatever the comorbidity multipliers
(see :mod:`medmesh.synthetic.engine.prevalence`).

Comorbidity is a relative risk applied to a parent condition (``parents``). Only the four
"core" conditions (:data:`CORE_KEYS`) may be parents, in that order, which keeps the joint
distribution small enough (16 states) to calibrate exactly and to condition cohorts on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

MAX_AGE = 110


@dataclass(frozen=True)
class ConditionSpec:
    """One modelled condition."""

    key: str
    snomed: tuple[str, str]
    icd10: tuple[str, str]
    #: ``(age, male prevalence, female prevalence)``, ages increasing.
    anchors: tuple[tuple[float, float, float], ...]
    #: parent condition key -> relative risk when the parent is present.
    parents: dict[str, float] = field(default_factory=dict)
    #: RxNorm ``(code, display)`` choices, first-line first.
    medications: tuple[tuple[str, str], ...] = ()
    #: share of patients with the condition who are on a medication for it.
    treated: float = 0.0
    #: chronic conditions stay active; the others resolve (``abatement``) after ``resolves_days``.
    resolves_days: int = 0
    #: onset only ever before 18 (checked by the tests).
    pediatric_only: bool = False
    #: conditions that bring the patient back for follow-up visits (the others are reviewed at
    #: wellness visits).
    follow_up: bool = True

    def prevalence(self, age: float, female: bool) -> float:
        """The target prevalence at ``age`` (years) for the sex."""
        column = 2 if female else 1
        anchors = self.anchors
        if age <= anchors[0][0]:
            return anchors[0][column]
        for left, right in pairwise(anchors):
            if age <= right[0]:
                share = (age - left[0]) / (right[0] - left[0])
                return left[column] + share * (right[column] - left[column])
        return anchors[-1][column]

    def possible_in(self, age_min: int, age_max: int, sexes: tuple[bool, ...]) -> bool:
        """Whether someone aged ``age_min``..``age_max`` of one of ``sexes`` (female: True)
        can have the condition."""
        return any(
            self.prevalence(age, female) > 0
            for age in range(age_min, age_max + 1)
            for female in sexes
        )


_CATALOG = (
    # NCHS Data Brief 289 (NHANES 2015-2016, >= 140/90 mmHg or treated): 18-39 9.2 % of men,
    # 5.6 % of women; 40-59 37.2 / 29.4 %; 60+ 58.5 / 66.8 %. Children: diagnosed ~1 %.
    ConditionSpec(
        "hypertension",
        ("59621000", "Essential hypertension"),
        ("I10", "Essential (primary) hypertension"),
        (
            (0, 0, 0),
            (10, 0.004, 0.004),
            (17, 0.012, 0.008),
            (28, 0.09, 0.055),
            (50, 0.37, 0.29),
            (70, 0.57, 0.64),
            (85, 0.66, 0.74),
        ),
        parents={"obesity": 1.8, "diabetes": 1.7},
        medications=(
            ("314076", "lisinopril 10 MG Oral Tablet"),
            ("197361", "amlodipine 5 MG Oral Tablet"),
            ("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
        ),
        treated=0.75,
    ),
    # CDC National Diabetes Statistics Report 2020, diagnosed diabetes: 18-44 3.0 %,
    # 45-64 13.8 %, 65+ 21.4 %, men slightly above women; youth type 2 ~0.1 %.
    ConditionSpec(
        "diabetes",
        ("44054006", "Diabetes mellitus type 2"),
        ("E11.9", "Type 2 diabetes mellitus without complications"),
        (
            (0, 0, 0),
            (10, 0, 0),
            (17, 0.001, 0.0015),
            (31, 0.03, 0.03),
            (55, 0.15, 0.125),
            (72, 0.23, 0.19),
            (85, 0.22, 0.19),
        ),
        parents={"obesity": 3.0},
        medications=(
            ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
        ),
        treated=0.85,
    ),
    # NHIS, adults ever told they have high cholesterol (rounded by age band); NHANES youth.
    ConditionSpec(
        "hyperlipidemia",
        ("55822004", "Hyperlipidemia"),
        ("E78.5", "Hyperlipidemia, unspecified"),
        (
            (0, 0, 0),
            (10, 0.002, 0.002),
            (17, 0.01, 0.01),
            (30, 0.10, 0.08),
            (50, 0.30, 0.28),
            (70, 0.50, 0.50),
            (85, 0.47, 0.50),
        ),
        parents={"diabetes": 1.6, "obesity": 1.3},
        medications=(
            ("617310", "atorvastatin 20 MG Oral Tablet"),
            ("312961", "simvastatin 20 MG Oral Tablet"),
        ),
        treated=0.6,
        follow_up=False,
    ),
    # CDC current asthma (NHIS 2019-2021): children 0-4 ~3 %, 5-17 ~8 % (boys above girls);
    # adults ~8 % (women 9.8 %, men 5.5 %), 65+ ~7 %.
    ConditionSpec(
        "asthma",
        ("195967001", "Asthma"),
        ("J45.909", "Unspecified asthma, uncomplicated"),
        (
            (0, 0, 0),
            (1, 0.01, 0.006),
            (3, 0.04, 0.025),
            (8, 0.095, 0.065),
            (15, 0.09, 0.08),
            (30, 0.055, 0.095),
            (55, 0.055, 0.10),
            (75, 0.05, 0.085),
        ),
        parents={"obesity": 1.4},
        medications=(
            ("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
            ("895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"),
        ),
        treated=0.8,
        follow_up=False,
    ),
    # CDC COPD (NHIS 2018): 18-44 ~1 %, 45-64 ~6 %, 65-74 ~11 %, 75+ ~12 %.
    ConditionSpec(
        "copd",
        ("13645005", "Chronic obstructive lung disease"),
        ("J44.9", "Chronic obstructive pulmonary disease, unspecified"),
        (
            (0, 0, 0),
            (30, 0, 0),
            (40, 0.01, 0.012),
            (55, 0.055, 0.065),
            (70, 0.11, 0.115),
            (82, 0.13, 0.12),
        ),
        medications=(
            (
                "896209",
                "60 ACTUAT fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler",
            ),
            ("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
        ),
        treated=0.8,
    ),
    # NCHS Data Brief 360 (NHANES 2017-2018): adults 20-39 40.0 %, 40-59 44.8 %, 60+ 42.8 %;
    # children 2-5 13.4 %, 6-11 20.3 %, 12-19 21.2 %; lower again after 80.
    ConditionSpec(
        "obesity",
        ("414916001", "Obesity"),
        ("E66.9", "Obesity, unspecified"),
        (
            (0, 0, 0),
            (2, 0.12, 0.12),
            (4, 0.135, 0.13),
            (9, 0.21, 0.195),
            (16, 0.22, 0.205),
            (30, 0.40, 0.395),
            (50, 0.45, 0.445),
            (68, 0.43, 0.42),
            (80, 0.33, 0.32),
            (90, 0.22, 0.22),
        ),
        follow_up=False,
    ),
    # CDC Chronic Kidney Disease in the United States 2021 (NHANES, stages 1-4): 18-44 6 %,
    # 45-64 12 %, 65+ 38 %; women slightly above men.
    ConditionSpec(
        "ckd",
        ("709044004", "Chronic kidney disease"),
        ("N18.9", "Chronic kidney disease, unspecified"),
        (
            (0, 0, 0),
            (15, 0, 0),
            (18, 0.03, 0.035),
            (31, 0.055, 0.065),
            (55, 0.11, 0.13),
            (72, 0.34, 0.38),
            (85, 0.45, 0.50),
        ),
        parents={"diabetes": 2.2, "hypertension": 1.8},
    ),
    # BRFSS 2020, adults ever told they have a depressive disorder: ~18.5 % (women ~24 %,
    # men ~13 %), lower after 65; diagnosed adolescents ~6-10 %.
    ConditionSpec(
        "depression",
        ("35489007", "Depressive disorder"),
        ("F32.A", "Depression, unspecified"),
        (
            (0, 0, 0),
            (8, 0.002, 0.002),
            (12, 0.02, 0.025),
            (17, 0.06, 0.10),
            (28, 0.13, 0.25),
            (50, 0.13, 0.24),
            (70, 0.11, 0.20),
            (85, 0.09, 0.17),
        ),
        medications=(
            ("310385", "fluoxetine 20 MG Oral Capsule"),
            ("200371", "citalopram 20 MG Oral Tablet"),
        ),
        treated=0.55,
        follow_up=False,
    ),
    # AHA Heart Disease and Stroke Statistics 2023 (NHANES 2017-2020), coronary heart disease:
    # 20-39 <1 %; 40-59 ~6 % of men, ~4 % of women; 60-79 ~19 / 10 %; 80+ ~31 / 19 %.
    ConditionSpec(
        "chd",
        ("53741008", "Coronary arteriosclerosis"),
        (
            "I25.10",
            "Atherosclerotic heart disease of native coronary artery without angina pectoris",
        ),
        (
            (0, 0, 0),
            (25, 0, 0),
            (30, 0.006, 0.006),
            (50, 0.055, 0.04),
            (70, 0.19, 0.10),
            (85, 0.31, 0.19),
        ),
        parents={"hypertension": 1.8, "diabetes": 1.8, "hyperlipidemia": 1.6},
        medications=(
            ("243670", "aspirin 81 MG Oral Tablet"),
            ("309362", "clopidogrel 75 MG Oral Tablet"),
        ),
        treated=0.85,
    ),
    # ATRIA study (Go et al., JAMA 2001): <55 0.1 %, 55-59 0.7 %, 60-64 1.7 %, 65-69 3.0 %,
    # 70-74 5.0 %, 75-79 7.3 %, 80-84 10.3 %, 85+ 11.1 %; men above women.
    ConditionSpec(
        "afib",
        ("49436004", "Atrial fibrillation"),
        ("I48.91", "Unspecified atrial fibrillation"),
        (
            (0, 0, 0),
            (30, 0, 0),
            (45, 0.002, 0.001),
            (57, 0.009, 0.005),
            (62, 0.021, 0.013),
            (67, 0.037, 0.023),
            (72, 0.06, 0.04),
            (77, 0.086, 0.062),
            (82, 0.115, 0.095),
            (88, 0.12, 0.105),
        ),
        parents={"hypertension": 1.5, "obesity": 1.4},
        medications=(
            ("855332", "warfarin sodium 5 MG Oral Tablet"),
            ("866412", "24 HR metoprolol succinate 100 MG Extended Release Oral Tablet"),
        ),
        treated=0.75,
    ),
    # CDC arthritis surveillance (NHIS), osteoarthritis about half of diagnosed arthritis:
    # 18-44 ~3 %, 45-64 ~13 %, 65+ ~33 %; women above men.
    ConditionSpec(
        "osteoarthritis",
        ("396275006", "Osteoarthritis"),
        ("M19.90", "Unspecified osteoarthritis, unspecified site"),
        (
            (0, 0, 0),
            (25, 0, 0),
            (35, 0.02, 0.025),
            (55, 0.11, 0.15),
            (72, 0.28, 0.36),
            (85, 0.36, 0.45),
        ),
        parents={"obesity": 1.8},
        medications=(
            ("849574", "naproxen sodium 220 MG Oral Tablet"),
            ("313782", "acetaminophen 325 MG Oral Tablet"),
        ),
        treated=0.5,
        follow_up=False,
    ),
    # NHANES (Hollowell 2002; Wyne 2022), treated or overt hypothyroidism, 4-5x as common in
    # women and rising with age; congenital ~1 in 2,000.
    ConditionSpec(
        "hypothyroidism",
        ("40930008", "Hypothyroidism"),
        ("E03.9", "Hypothyroidism, unspecified"),
        (
            (0, 0.0005, 0.0005),
            (15, 0.002, 0.006),
            (30, 0.008, 0.035),
            (50, 0.02, 0.08),
            (70, 0.04, 0.14),
            (85, 0.06, 0.17),
        ),
        medications=(("966222", "levothyroxine sodium 0.05 MG Oral Tablet"),),
        treated=0.95,
        follow_up=False,
    ),
    # Recurrent acute otitis media, a childhood diagnosis (Kaur et al., Pediatrics 2017: ~60 %
    # of children have an episode by age 3, ~25 % three or more). Recorded for patients under 18
    # only; onset before age 9.
    ConditionSpec(
        "otitis_media",
        ("65363002", "Otitis media"),
        ("H66.90", "Otitis media, unspecified, unspecified ear"),
        (
            (0, 0, 0),
            (1, 0.10, 0.08),
            (3, 0.26, 0.22),
            (6, 0.30, 0.26),
            (8, 0.31, 0.27),
            (17, 0.31, 0.27),
            (18, 0, 0),
        ),
        medications=(("308182", "amoxicillin 250 MG Oral Capsule"),),
        treated=0.9,
        resolves_days=14,
        pediatric_only=True,
        follow_up=False,
    ),
)

#: key -> spec, in catalog order.
CONDITIONS: dict[str, ConditionSpec] = {spec.key: spec for spec in _CATALOG}
#: The keys accepted for cohorts and reported by the realism report.
CONDITION_KEYS: tuple[str, ...] = tuple(CONDITIONS)
#: Conditions that may raise the risk of others, in sampling order (bit i of a core state).
CORE_KEYS: tuple[str, ...] = ("obesity", "diabetes", "hypertension", "hyperlipidemia")
#: The conditions sampled independently given the core state.
OTHER_KEYS: tuple[str, ...] = tuple(k for k in CONDITION_KEYS if k not in CORE_KEYS)


def _check_catalog() -> None:
    for spec in _CATALOG:
        ages = [a[0] for a in spec.anchors]
        assert ages == sorted(ages), spec.key
        for parent in spec.parents:
            assert parent in CORE_KEYS, (spec.key, parent)
            if spec.key in CORE_KEYS:
                assert CORE_KEYS.index(parent) < CORE_KEYS.index(spec.key), spec.key


_check_catalog()
