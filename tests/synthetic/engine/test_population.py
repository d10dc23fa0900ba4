"""The population-level promises of the issue, on 10,000 patients with a fixed seed."""

from __future__ import annotations

import re
from statistics import mean

from medmesh.synthetic.engine import CONDITION_KEYS
from medmesh.synthetic.engine.catalog.conditions import CONDITIONS
from medmesh.synthetic.engine.catalog.places import STATES
from tests.synthetic.engine.conftest import REFERENCE_DATE, Population


def _assessed(population: Population) -> list[dict[str, object]]:
    return [row for row in population.report.prevalence_rows() if row["assessed"]]


def test_each_condition_rate_is_within_20_percent_of_its_target_in_each_judged_age_band(
    population: Population,
) -> None:
    assessed = _assessed(population)
    assert len(assessed) >= 25
    assert all(row["within_tolerance"] for row in assessed), [
        row for row in assessed if not row["within_tolerance"]
    ]


def test_older_patients_condition_rates_are_within_20_percent(
    older_population: Population,
) -> None:
    assessed = _assessed(older_population)
    assert {row["age_band"] for row in assessed} == {"65+"}
    assert all(row["within_tolerance"] for row in assessed), assessed


def test_children_condition_rates_are_within_20_percent(child_population: Population) -> None:
    assessed = _assessed(child_population)
    assert {row["age_band"] for row in assessed} == {"0-17"}
    assert all(row["within_tolerance"] for row in assessed), assessed


def test_every_condition_is_judged_in_some_age_band(
    population: Population, older_population: Population, child_population: Population
) -> None:
    # The 10,000-patient sample judges most bands; 65+ and 0-17 samples add atrial
    # fibrillation and the childhood conditions, too rare elsewhere to judge at this size.
    judged = {
        str(row["condition"])
        for sample in (population, older_population, child_population)
        for row in _assessed(sample)
    }
    assert judged == set(CONDITION_KEYS)


def test_the_default_population_judges_the_common_conditions_in_every_adult_band(
    population: Population,
) -> None:
    assessed = {(row["condition"], row["age_band"]) for row in _assessed(population)}
    for condition in ("hypertension", "hyperlipidemia", "obesity", "ckd", "depression"):
        for band in ("18-44", "45-64", "65+"):
            assert (condition, band) in assessed


def test_hypertensive_patients_have_higher_systolic_pressure(population: Population) -> None:
    adults = [f for f in population.facts if f.age >= 18 and f.mean_systolic is not None]
    with_hypertension = [f.mean_systolic for f in adults if "hypertension" in f.conditions]
    without = [f.mean_systolic for f in adults if "hypertension" not in f.conditions]
    assert len(with_hypertension) > 1000
    assert mean(v for v in with_hypertension if v) > mean(v for v in without if v) + 15


def test_diabetic_patients_hba1c_is_mostly_at_least_6_5_percent(population: Population) -> None:
    diabetic = [f.hba1c for f in population.facts if "diabetes" in f.conditions and f.hba1c]
    others = [f.hba1c for f in population.facts if "diabetes" not in f.conditions and f.hba1c]
    assert len(diabetic) > 300
    assert sum(v >= 6.5 for v in diabetic) / len(diabetic) > 0.8
    assert all(v < 6.5 for v in others)


def test_obese_adults_have_a_bmi_of_30_or_more(population: Population) -> None:
    adults = [f for f in population.facts if f.age >= 18 and f.bmi is not None]
    obese = [f.bmi for f in adults if "obesity" in f.conditions and f.bmi]
    # Some were last weighed before their obesity started.
    assert sum(bmi >= 30 for bmi in obese) / len(obese) > 0.95
    assert all(f.bmi < 30 for f in adults if "obesity" not in f.conditions and f.bmi)


def test_nothing_is_dated_after_death(population: Population) -> None:
    assert len(population.deaths) > 100
    for _, died, latest in population.deaths:
        assert latest <= died


def test_nothing_is_dated_after_the_reference_date(population: Population) -> None:
    reference = REFERENCE_DATE.isoformat()
    assert all(latest <= reference for latest in population.latest_dates)


def test_deaths_follow_age_specific_mortality(population: Population) -> None:
    old = [f for f in population.facts if f.age >= 75]
    young = [f for f in population.facts if f.age < 40]
    assert sum(f.deceased for f in old) / len(old) > 10 * sum(f.deceased for f in young) / len(
        young
    )


def test_no_pediatric_only_condition_starts_in_adulthood(
    population: Population, child_population: Population
) -> None:
    pediatric = {spec.snomed[0] for spec in CONDITIONS.values() if spec.pediatric_only}
    onsets = [
        age
        for sample in (population, child_population)
        for code, age in sample.onsets
        if code in pediatric
    ]
    assert len(onsets) > 500
    assert max(onsets) < 18


def test_conditions_start_between_birth_and_the_record_end(population: Population) -> None:
    assert all(0 <= age <= 111 for _, age in population.onsets)


def test_ssns_are_all_in_the_never_issued_9xx_area(population: Population) -> None:
    for patient in population.patients:
        (ssn,) = [i["value"] for i in patient["identifier"] if i["system"].endswith("us-ssn")]
        assert re.fullmatch(r"9\d\d-\d\d-\d{4}", ssn)
        assert ssn[4:6] != "00"
        assert ssn[7:] != "0000"


def test_phone_numbers_are_in_the_fictional_555_01xx_range(population: Population) -> None:
    for patient in population.patients:
        phones = [t["value"] for t in patient["telecom"] if t["system"] == "phone"]
        assert phones
        for phone in phones:
            assert re.fullmatch(r"\d{3}-555-01\d\d", phone), phone


def test_emails_use_the_reserved_example_domain(population: Population) -> None:
    for patient in population.patients:
        emails = [t["value"] for t in patient["telecom"] if t["system"] == "email"]
        assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d*@example\.com", e) for e in emails)


def test_addresses_have_a_city_and_zip_of_their_state(population: Population) -> None:
    for patient in population.patients:
        (address,) = patient["address"]
        cities = dict(STATES[address["state"]][3])
        assert address["postalCode"] in cities[address["city"]]


def test_states_follow_population(population: Population) -> None:
    states = [p["address"][0]["state"] for p in population.patients]
    assert states.count("CA") > states.count("TX") > states.count("WY")


def test_age_and_sex_follow_the_us_pyramid(population: Population) -> None:
    facts = population.facts
    children = sum(f.age < 18 for f in facts) / len(facts)
    old = sum(f.age >= 65 for f in facts) / len(facts)
    assert 0.19 < children < 0.26  # Census 2020: 22 % under 18
    assert 0.12 < old < 0.19  # 17 % 65 and over, fewer once deaths are counted at death
    old_women = sum(f.sex == "female" for f in facts if f.age >= 80)
    old_men = sum(f.sex == "male" for f in facts if f.age >= 80)
    assert old_women > old_men


def test_race_and_ethnicity_follow_us_shares(population: Population) -> None:
    def category(patient: dict[str, object], url: str) -> list[str]:
        (extension,) = [e for e in patient["extension"] if e["url"].endswith(url)]  # type: ignore[attr-defined]
        return [
            part["valueCoding"]["code"] for part in extension["extension"] if "valueCoding" in part
        ]

    hispanic = sum(category(p, "us-core-ethnicity") == ["2135-2"] for p in population.patients)
    black = sum("2054-5" in category(p, "us-core-race") for p in population.patients)
    n = len(population.patients)
    assert 0.16 < hispanic / n < 0.22  # Census 2020: 18.7 %
    assert 0.11 < black / n < 0.17  # 12.4 % alone, 14.2 % alone or in combination
