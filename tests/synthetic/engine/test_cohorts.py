"""Cohorts are generated directly: every member has the condition, ages and comorbidities
follow the condition (no rejection sampling), and the rest of the run is the general
population."""

from __future__ import annotations

from datetime import date
from statistics import mean

from medmesh.synthetic.engine import Cohort, GenerationOptions, PatientFacts, PatientGenerator
from medmesh.synthetic.engine.catalog.conditions import CONDITIONS

REFERENCE = date(2025, 6, 30)


def facts_of(options: GenerationOptions, indexes: range) -> list[PatientFacts]:
    generator = PatientGenerator(options)
    return [generator.patient(i).facts for i in indexes]


def test_cohort_members_come_first_and_all_have_their_condition() -> None:
    options = GenerationOptions(
        seed=5,
        size=700,
        reference_date=REFERENCE,
        cohorts=(Cohort("diabetes", 300), Cohort("copd", 100)),
    )
    facts = facts_of(options, range(700))
    assert all(f.cohort == "diabetes" and "diabetes" in f.conditions for f in facts[:300])
    assert all(f.cohort == "copd" and "copd" in f.conditions for f in facts[300:400])
    assert all(f.cohort is None for f in facts[400:])
    general = facts[400:]
    assert sum("diabetes" in f.conditions for f in general) < 0.2 * len(general)


def test_cohort_members_have_the_ages_of_people_with_the_condition() -> None:
    options = GenerationOptions(
        seed=6, size=600, reference_date=REFERENCE, cohorts=(Cohort("afib", 300),)
    )
    facts = facts_of(options, range(600))
    cohort, general = facts[:300], facts[300:]
    assert mean(f.age for f in cohort) > 65 > mean(f.age for f in general)
    assert min(f.age for f in cohort) >= 30
    otitis = GenerationOptions(
        seed=6, size=200, reference_date=REFERENCE, cohorts=(Cohort("otitis_media", 200),)
    )
    assert all(f.age < 18 for f in facts_of(otitis, range(200)))


def test_comorbidities_follow_the_cohort_condition() -> None:
    options = GenerationOptions(
        seed=7, size=1200, reference_date=REFERENCE, cohorts=(Cohort("diabetes", 600),)
    )
    facts = facts_of(options, range(1200))
    diabetic = facts[:600]
    general_adults = [f for f in facts[600:] if f.age >= 40]
    obese_share = sum("obesity" in f.conditions for f in diabetic) / len(diabetic)
    general_share = sum("obesity" in f.conditions for f in general_adults) / len(general_adults)
    # Obesity triples the risk of type 2 diabetes, so diabetics are far more often obese.
    assert obese_share > general_share + 0.15
    hypertensive = sum("hypertension" in f.conditions for f in diabetic) / len(diabetic)
    assert hypertensive > 0.5


def test_cohort_records_show_the_condition() -> None:
    options = GenerationOptions(
        seed=8, size=20, reference_date=REFERENCE, cohorts=(Cohort("diabetes", 20),)
    )
    generator = PatientGenerator(options)
    code = CONDITIONS["diabetes"].snomed[0]
    for index in range(20):
        resources = generator.patient(index).resources
        conditions = [r for r in resources if r["resourceType"] == "Condition"]
        assert any(c["code"]["coding"][0]["code"] == code for c in conditions)


def test_age_sex_and_state_options_are_respected() -> None:
    options = GenerationOptions(
        seed=9,
        size=300,
        age_min=30,
        age_max=40,
        sex="female",
        state="VT",
        reference_date=REFERENCE,
    )
    generator = PatientGenerator(options)
    for index in range(300):
        patient = generator.patient(index)
        assert patient.facts.sex == "female"
        assert patient.resources[0]["gender"] == "female"
        assert patient.resources[0]["address"][0]["state"] == "VT"
        assert 30 <= patient.facts.age <= 40 or patient.facts.deceased
    states = {
        r["address"]["state"] for r in generator.directory() if r["resourceType"] == "Location"
    }
    assert states == {"VT"}


def test_years_of_history_bound_the_record() -> None:
    options = GenerationOptions(seed=10, size=50, years_of_history=2, reference_date=REFERENCE)
    generator = PatientGenerator(options)
    for index in range(50):
        for resource in generator.patient(index).resources:
            if resource["resourceType"] == "Encounter":
                assert resource["period"]["start"][:10] >= "2023-06-29"
