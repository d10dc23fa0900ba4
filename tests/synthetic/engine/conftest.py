"""Generated populations shared by the engine's tests (generated once per session: 10,000
patients take seconds, not minutes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from medmesh.synthetic.engine import GenerationOptions, PatientFacts, PatientGenerator
from medmesh.synthetic.realism import RealismReport

REFERENCE_DATE = date(2025, 6, 30)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def dated_strings(node: Any) -> list[str]:
    """Every date or dateTime string in a resource (any element)."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and _DATE.match(item):
            found.append(item)
    return found


@dataclass
class Population:
    """A generated population, reduced to what the tests check."""

    facts: list[PatientFacts] = field(default_factory=list)
    report: RealismReport = field(default_factory=RealismReport)
    patients: list[dict[str, Any]] = field(default_factory=list)
    #: (patient index, deceasedDateTime, the latest date in the record) for deceased patients
    deaths: list[tuple[int, str, str]] = field(default_factory=list)
    #: (condition code, age in years at onset) of every Condition
    onsets: list[tuple[str, float]] = field(default_factory=list)
    latest_dates: list[str] = field(default_factory=list)


def generate(options: GenerationOptions) -> Population:
    generator = PatientGenerator(options)
    population = Population()
    for index in range(options.size):
        patient = generator.patient(index)
        population.facts.append(patient.facts)
        population.report.add(patient.facts)
        resource = patient.resources[0]
        population.patients.append(resource)
        birth = date.fromisoformat(resource["birthDate"])
        for item in patient.resources:
            if item["resourceType"] == "Condition":
                onset = date.fromisoformat(item["onsetDateTime"][:10])
                age = (onset - birth).days / 365.2425
                population.onsets.append((item["code"]["coding"][0]["code"], age))
        if "deceasedDateTime" in resource:
            latest = max(d[:10] for r in patient.resources for d in dated_strings(r))
            population.deaths.append((index, resource["deceasedDateTime"], latest))
        elif index % 10 == 0:
            population.latest_dates.append(
                max(d[:10] for r in patient.resources for d in dated_strings(r))
            )
    return population


@pytest.fixture(scope="session")
def population() -> Population:
    """10,000 patients of the default options (ages 0-90, 10 years of history), seed 20250630."""
    return generate(GenerationOptions(seed=20250630, size=10_000, reference_date=REFERENCE_DATE))


@pytest.fixture(scope="session")
def older_population() -> Population:
    """3,000 patients aged 65-90: enough old patients to judge atrial fibrillation."""
    options = GenerationOptions(seed=65, size=3_000, age_min=65, reference_date=REFERENCE_DATE)
    return generate(options)


@pytest.fixture(scope="session")
def child_population() -> Population:
    """3,000 patients aged 0-17: enough children to judge the childhood conditions."""
    options = GenerationOptions(seed=17, size=3_000, age_max=17, reference_date=REFERENCE_DATE)
    return generate(options)
