"""The realism report: how a generated population compares with its targets.

* Prevalence of each condition per age band against the target the engine samples from (the
  published US figure for each patient's age and sex, averaged over the band's patients), with
  the relative error and whether it is within the tolerance (20 %). Only the general
  population counts: cohort members have their condition by construction.
* Distributions of the vital signs and labs that the conditions shape (systolic and diastolic
  pressure by hypertension, BMI by obesity, HbA1c by diabetes): mean, sd and percentiles.

A cell is *assessed* when the band has enough patients for the tolerance to mean something:
the expected sampling error of the observed rate (``sqrt((1 - p) / (n p))``) must be at most
:data:`ASSESSED_RELATIVE_SD` (8 %, so the 20 % tolerance is 2.5 standard errors). Smaller cells
are reported with ``assessed: false``. Reports from several workers merge exactly
(:meth:`RealismReport.merge`): they hold counts, sums and histograms, not samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from medmesh.synthetic.engine import AGE_BANDS, CONDITION_KEYS, PatientFacts
from medmesh.synthetic.engine.catalog.conditions import CONDITIONS

TOLERANCE = 0.20
ASSESSED_RELATIVE_SD = 0.08
BANDS: tuple[str, ...] = tuple(label for _, _, label in AGE_BANDS)

#: measure -> (condition that splits it, histogram bin width, unit)
MEASURES: dict[str, tuple[str, float, str]] = {
    "systolic": ("hypertension", 1.0, "mm[Hg]"),
    "diastolic": ("hypertension", 1.0, "mm[Hg]"),
    "bmi": ("obesity", 0.1, "kg/m2"),
    "hba1c": ("diabetes", 0.1, "%"),
}


@dataclass
class Distribution:
    """Count, sums and a histogram of one measure in one group; mergeable."""

    width: float
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)

    def add(self, value: float) -> None:
        """Record one patient's value."""
        self.count += 1
        self.total += value
        self.squares += value * value
        slot = math.floor(value / self.width + 0.5)
        self.bins[slot] = self.bins.get(slot, 0) + 1

    def merge(self, other: Distribution) -> None:
        """Add another worker's values."""
        self.count += other.count
        self.total += other.total
        self.squares += other.squares
        for slot, count in other.bins.items():
            self.bins[slot] = self.bins.get(slot, 0) + count

    def percentile(self, share: float) -> float | None:
        """The value below which ``share`` of the values fall (to the bin width)."""
        if not self.count:
            return None
        rank, seen = share * (self.count - 1), 0
        for slot in sorted(self.bins):
            seen += self.bins[slot]
            if seen > rank:
                return round(slot * self.width, 1)
        return None

    def to_json(self) -> dict[str, Any]:
        """count, mean, sd, p5, p50, p95 (None when empty)."""
        mean = self.total / self.count if self.count else None
        sd = None
        if self.count > 1 and mean is not None:
            variance = (self.squares - self.count * mean * mean) / (self.count - 1)
            sd = round(math.sqrt(max(variance, 0.0)), 2)
        return {
            "count": self.count,
            "mean": round(mean, 2) if mean is not None else None,
            "sd": sd,
            "p5": self.percentile(0.05),
            "p50": self.percentile(0.5),
            "p95": self.percentile(0.95),
        }


@dataclass
class PrevalenceCell:
    """One condition in one age band: patients, patients with it, expected number."""

    patients: int = 0
    observed: int = 0
    expected: float = 0.0

    def to_json(self, condition: str, band: str) -> dict[str, Any]:
        """The cell with rates, relative error and the tolerance verdict."""
        n = self.patients
        observed = self.observed / n if n else 0.0
        target = self.expected / n if n else 0.0
        relative_error = abs(observed - target) / target if target > 0 else None
        assessed = (
            target > 0 and n > 0 and math.sqrt((1 - target) / (n * target)) <= ASSESSED_RELATIVE_SD
        )
        within = relative_error <= TOLERANCE if relative_error is not None else observed == 0
        return {
            "condition": condition,
            "age_band": band,
            "patients": n,
            "with_condition": self.observed,
            "observed": round(observed, 4),
            "target": round(target, 4),
            "relative_error": round(relative_error, 4) if relative_error is not None else None,
            "within_tolerance": within,
            "assessed": assessed,
        }


class RealismReport:
    """Accumulates :class:`PatientFacts`; ``to_json`` and ``render_text`` present the result."""

    def __init__(self) -> None:
        self.patients = 0
        self.deceased = 0
        self.resources = 0
        self.cohort_patients: dict[str, int] = {}
        self.prevalence = {
            (key, band): PrevalenceCell() for key in CONDITION_KEYS for band in BANDS
        }
        self.distributions = {
            (measure, has): Distribution(width)
            for measure, (_, width, _) in MEASURES.items()
            for has in (True, False)
        }

    def add(self, facts: PatientFacts) -> None:
        """Count one patient."""
        self.patients += 1
        self.deceased += facts.deceased
        self.resources += facts.resource_count
        conditions = facts.conditions
        if facts.cohort is not None:
            self.cohort_patients[facts.cohort] = self.cohort_patients.get(facts.cohort, 0) + 1
        else:
            female = facts.sex == "female"
            for key in CONDITION_KEYS:
                cell = self.prevalence[(key, facts.age_band)]
                cell.patients += 1
                cell.observed += key in conditions
                cell.expected += CONDITIONS[key].prevalence(facts.age, female)
        if facts.age < 18:
            return  # the distributions describe adults
        values = {
            "systolic": facts.mean_systolic,
            "diastolic": facts.mean_diastolic,
            "bmi": facts.bmi,
            "hba1c": facts.hba1c,
        }
        for measure, (condition, _, _) in MEASURES.items():
            value = values[measure]
            if value is not None:
                self.distributions[(measure, condition in conditions)].add(value)

    def merge(self, other: RealismReport) -> None:
        """Add another report (another worker's patients) into this one."""
        self.patients += other.patients
        self.deceased += other.deceased
        self.resources += other.resources
        for key, count in other.cohort_patients.items():
            self.cohort_patients[key] = self.cohort_patients.get(key, 0) + count
        for cell_key, cell in other.prevalence.items():
            mine = self.prevalence[cell_key]
            mine.patients += cell.patients
            mine.observed += cell.observed
            mine.expected += cell.expected
        for dist_key, distribution in other.distributions.items():
            self.distributions[dist_key].merge(distribution)

    def prevalence_rows(self) -> list[dict[str, Any]]:
        """One row per condition and age band where the target or the observation is not 0."""
        rows = []
        for (key, band), cell in self.prevalence.items():
            if cell.patients and (cell.expected > 0 or cell.observed > 0):
                rows.append(cell.to_json(key, band))
        return rows

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (for the manifest and the API)."""
        rows = self.prevalence_rows()
        assessed = [row for row in rows if row["assessed"]]
        vitals = []
        for (measure, has), distribution in self.distributions.items():
            condition, _, unit = MEASURES[measure]
            group = condition if has else f"no {condition}"
            vitals.append(
                {"measure": measure, "unit": unit, "group": group, **distribution.to_json()}
            )
        return {
            "patients": self.patients,
            "general_population": self.patients - sum(self.cohort_patients.values()),
            "cohort_patients": dict(sorted(self.cohort_patients.items())),
            "deceased": self.deceased,
            "mean_resources_per_patient": (
                round(self.resources / self.patients, 1) if self.patients else None
            ),
            "tolerance": TOLERANCE,
            "assessed_cells": len(assessed),
            "assessed_within_tolerance": sum(row["within_tolerance"] for row in assessed),
            "prevalence": rows,
            "vitals": vitals,
        }

    def render_text(self) -> str:
        """A plain-text table for the CLI."""
        data = self.to_json()
        lines = [
            f"Realism report: {data['patients']} patients ({data['general_population']} general "
            f"population, {data['deceased']} deceased), "
            f"{data['mean_resources_per_patient']} resources per patient",
            f"Prevalence vs target (tolerance ±{TOLERANCE:.0%} relative; '-' = too few patients "
            f"to judge): {data['assessed_within_tolerance']}/{data['assessed_cells']} assessed "
            "cells within tolerance",
            f"  {'condition':<16}{'band':<7}{'patients':>9}{'observed':>10}{'target':>9}"
            f"{'error':>8}  ok",
        ]
        for row in data["prevalence"]:
            error = row["relative_error"]
            verdict = ("yes" if row["within_tolerance"] else "NO") if row["assessed"] else "-"
            lines.append(
                f"  {row['condition']:<16}{row['age_band']:<7}{row['patients']:>9}"
                f"{row['observed']:>10.2%}{row['target']:>9.2%}"
                f"{(f'{error:.0%}' if error is not None else 'n/a'):>8}  {verdict}"
            )
        lines.append("Vital signs and labs, adults (per-patient mean pressure, latest BMI/HbA1c):")
        lines.append(
            f"  {'measure':<10}{'group':<18}{'n':>7}{'mean':>8}{'sd':>7}{'p5':>7}{'p50':>7}{'p95':>7}"
        )
        for row in data["vitals"]:
            cells = [
                row[k] if row[k] is not None else "-" for k in ("mean", "sd", "p5", "p50", "p95")
            ]
            lines.append(
                f"  {row['measure']:<10}{row['group']:<18}{row['count']:>7}"
                + "".join(f"{cell:>8}" if i == 0 else f"{cell:>7}" for i, cell in enumerate(cells))
            )
        return "\n".join(lines)
