"""Measured values that follow the patient: growth, vital signs and labs.

A :class:`Body` holds a patient's own baseline (height percentile, BMI, blood pressure offset,
kidney function...) and produces each visit's values from it, the age at the visit and the
conditions present then. Sources for the shapes: CDC growth charts (children's medians), NHANES
adult distributions, ADAG (glucose from HbA1c), Friedewald (total cholesterol), CKD-EPI 2021
(eGFR from creatinine).
"""

from __future__ import annotations

from math import pow
from random import Random
from statistics import NormalDist

# fmt: off
_GROWTH_AGES = (0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                17, 18)
#: CDC/WHO growth chart medians: height (cm) and weight (kg) by _GROWTH_AGES, male then female.
_HEIGHT = (
    (49.9, 61.4, 67.6, 72.0, 75.7, 82.3, 87.1, 96.1, 103.3, 110.0, 116.0, 121.7, 127.3, 132.6,
     137.8, 143.1, 149.1, 156.0, 163.2, 169.0, 172.9, 175.2, 176.1),
    (49.1, 59.8, 65.7, 70.1, 74.0, 80.7, 85.7, 95.1, 102.7, 109.4, 115.5, 121.1, 126.6, 132.2,
     138.3, 144.8, 151.0, 156.4, 159.8, 161.7, 162.5, 163.0, 163.3),
)
_WEIGHT = (
    (3.3, 6.4, 7.9, 8.9, 9.6, 10.9, 12.2, 14.3, 16.3, 18.4, 20.7, 23.1, 25.6, 28.6, 31.9, 35.6,
     40.0, 45.3, 50.8, 56.0, 60.8, 64.6, 67.2),
    (3.2, 5.8, 7.3, 8.2, 8.9, 10.2, 11.5, 13.9, 15.9, 18.0, 20.2, 22.6, 25.3, 28.5, 32.5, 36.9,
     41.5, 45.8, 49.4, 52.1, 53.9, 55.1, 56.2),
)
# fmt: on
_MONTHS = 18 * 12 + 1

#: Standard normal quantiles: ``NORMAL[rng.getrandbits(12)]`` is a normal draw at a tenth of
#: the cost of ``rng.gauss`` (the hot path draws several per resource).
NORMAL: tuple[float, ...] = tuple(NormalDist().inv_cdf((i + 0.5) / 4096) for i in range(4096))


def _by_month(values: tuple[float, ...]) -> tuple[float, ...]:
    table = []
    for month in range(_MONTHS):
        age = month / 12
        for index in range(1, len(_GROWTH_AGES)):
            if age <= _GROWTH_AGES[index]:
                left, right = _GROWTH_AGES[index - 1], _GROWTH_AGES[index]
                share = (age - left) / (right - left)
                table.append(values[index - 1] + share * (values[index] - values[index - 1]))
                break
    return tuple(table)


HEIGHT_BY_MONTH = (_by_month(_HEIGHT[0]), _by_month(_HEIGHT[1]))
WEIGHT_BY_MONTH = (_by_month(_WEIGHT[0]), _by_month(_WEIGHT[1]))
ADULT_HEIGHT = ((175.4, 7.4), (161.7, 6.9))  # NHANES mean, sd (cm)


def creatinine_for(egfr: float, age: float, female: bool) -> float:
    """Serum creatinine (mg/dL) giving ``egfr`` by CKD-EPI 2021 (the formula inverted)."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    base = egfr / (142 * pow(0.9938, age) * (1.012 if female else 1.0))
    ratio = pow(base, -1 / 1.2) if base <= 1 else pow(base, 1 / alpha)
    return kappa * ratio


def egfr_for(creatinine: float, age: float, female: bool) -> float:
    """CKD-EPI 2021 eGFR (mL/min/1.73 m2) from serum creatinine (mg/dL)."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine / kappa
    value = 142 * pow(min(ratio, 1.0), alpha) * pow(max(ratio, 1.0), -1.2) * pow(0.9938, age)
    return value * (1.012 if female else 1.0)


class Body:
    """One patient's baseline; the methods give the values measured at a visit."""

    __slots__ = (
        "bmi",
        "bp_offset",
        "egfr_level",
        "female",
        "growth",
        "hba1c",
        "hdl",
        "height_z",
        "ldl",
        "triglycerides",
    )

    def __init__(self, rng: Random, female: bool, conditions: set[str]) -> None:
        bits = rng.getrandbits
        self.female = female
        self.height_z = NORMAL[bits(12)]
        obese = "obesity" in conditions
        diabetic = "diabetes" in conditions
        if obese:
            bmi = 30.3 + rng.expovariate(1 / 5.0)
            self.bmi = bmi if bmi < 60 else 60.0
            self.growth = 1.3 + rng.random() * 0.3
        else:
            self.bmi = rng.triangular(19.0, 29.8, 26.0)
            self.growth = rng.triangular(0.85, 1.17, 1.0)
        self.bp_offset = 7.0 * NORMAL[bits(12)]
        self.hba1c = 7.4 + 0.9 * NORMAL[bits(12)] if diabetic else 5.35 + 0.28 * NORMAL[bits(12)]
        high_ldl = "hyperlipidemia" in conditions
        self.ldl = 150.0 + 28.0 * NORMAL[bits(12)] if high_ldl else 104.0 + 24.0 * NORMAL[bits(12)]
        self.hdl = (
            (56.0 if female else 46.0) + 11.0 * NORMAL[bits(12)] - (5 if obese or diabetic else 0)
        )
        self.triglycerides = (170.0 if obese or diabetic else 110.0) + 40.0 * NORMAL[bits(12)]
        # CKD: about 45 % in stages 3-4 (eGFR under 60), the rest stages 1-2 (kidney damage
        # with eGFR 60-89); otherwise a personal offset around the age trend.
        if "ckd" in conditions:
            low = rng.random() < 0.45
            self.egfr_level = 18 + rng.random() * 41 if low else 60 + rng.random() * 29
        else:
            self.egfr_level = 8.0 * NORMAL[bits(12)]

    def height(self, age: float) -> float:
        """Height (cm) at ``age``: the growth-chart median at the patient's percentile."""
        female = self.female
        if age < 18:
            return HEIGHT_BY_MONTH[female][int(age * 12)] * (1 + 0.042 * self.height_z)
        mean, sd = ADULT_HEIGHT[female]
        shrink = 0.12 * (age - 70) if age > 70 else 0.0
        return mean + sd * self.height_z - shrink

    def weight(self, age: float, height: float, obese: bool) -> float:
        """Weight (kg): growth chart for children, the patient's BMI for adults."""
        if age < 18:
            factor = self.growth if obese or age < 2 else min(self.growth, 1.17)
            return WEIGHT_BY_MONTH[self.female][int(age * 12)] * factor
        bmi = self.bmi if obese else min(self.bmi, 29.8)
        metres = height / 100
        return bmi * metres * metres

    def blood_pressure(self, age: float, hypertensive: bool, rng: Random) -> tuple[int, int]:
        """Systolic and diastolic (mmHg) at one visit."""
        bits = rng.getrandbits
        if age < 18:
            # Children's hypertension: at or above the 95th percentile for age (AAP 2017).
            high = 14.0 if hypertensive else 0.0
            systolic = 88 + 1.6 * age + 0.6 * self.bp_offset + high + 5 * NORMAL[bits(12)]
            diastolic = 52 + 1.0 * age + high * 0.6 + 5 * NORMAL[bits(12)]
            return int(systolic), int(diastolic)
        over = age - 20 if age > 20 else 0.0
        if hypertensive:
            systolic = 138 + 0.2 * over + self.bp_offset + 8 * NORMAL[bits(12)]
            diastolic = 86 + 7 * NORMAL[bits(12)] - (0.15 * (age - 60) if age > 60 else 0)
        else:
            systolic = 108 + 0.35 * over + 0.7 * self.bp_offset + 6 * NORMAL[bits(12)]
            systolic = systolic if systolic < 139 else 139 - rng.random() * 6
            diastolic = 70 + 0.12 * over + 6 * NORMAL[bits(12)]
            diastolic = diastolic if diastolic < 89 else 89 - rng.random() * 5
        return int(systolic), int(diastolic)

    def egfr(self, age: float, kidney_disease: bool) -> float:
        """Kidney function at ``age``; chronic kidney disease keeps it under 90."""
        if kidney_disease:
            return self.egfr_level
        value = 128 - 0.75 * age + self.egfr_level
        return 61.0 if value < 61 else (135.0 if value > 135 else value)


def heart_rate(age: float, afib: bool, rng: Random) -> int:
    """Beats per minute, high in infants and falling with age."""
    base = 135 - 14 * age if age < 4 else (95 - 1.8 * age if age < 13 else 72.0)
    return int(base + 7 * NORMAL[rng.getrandbits(12)] + (14 if afib else 0))


def respiratory_rate(age: float, rng: Random) -> int:
    """Breaths per minute."""
    base = 34 - 3.5 * age if age < 4 else (22 - 0.4 * age if age < 13 else 15.0)
    return int(base + rng.random() * 4)


def glucose_for(hba1c: float, rng: Random) -> int:
    """Glucose (mg/dL) consistent with HbA1c (ADAG estimated average glucose)."""
    return int(28.7 * hba1c - 46.7 + 9 * NORMAL[rng.getrandbits(12)])


def round1(value: float) -> float:
    """A positive value to one decimal, the way it is reported (cheaper than ``round``)."""
    return int(value * 10 + 0.5) / 10
