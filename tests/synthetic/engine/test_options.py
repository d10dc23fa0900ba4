"""Options: what a user may ask for, and the messages for what they may not."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from medmesh.synthetic.engine import (
    CONDITION_KEYS,
    Cohort,
    GenerationOptions,
    InvalidOptions,
    parse_cohort,
)

TODAY = date(2025, 6, 30)


def options(**changes: Any) -> GenerationOptions:
    values: dict[str, Any] = {"seed": 1, "size": 10, "reference_date": TODAY, **changes}
    return GenerationOptions(**values)


def test_the_issue_lists_conditions_are_all_cohort_keys() -> None:
    assert set(CONDITION_KEYS) >= {
        "hypertension",
        "diabetes",
        "hyperlipidemia",
        "asthma",
        "copd",
        "obesity",
        "ckd",
        "depression",
        "chd",
        "afib",
        "osteoarthritis",
        "hypothyroidism",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("diabetes:1000", Cohort("diabetes", 1000)),
        (" Hypertension : 50 ", Cohort("hypertension", 50)),
        ("otitis-media:3", Cohort("otitis_media", 3)),
    ],
)
def test_parse_cohort_reads_condition_and_count(text: str, expected: Cohort) -> None:
    assert parse_cohort(text) == expected


@pytest.mark.parametrize(
    "text", ["cancer:10", "diabetes", "diabetes:", "diabetes:-1", "diabetes:x", "diabetes:³", ":5"]
)
def test_a_bad_cohort_names_the_known_conditions(text: str) -> None:
    with pytest.raises(InvalidOptions) as raised:
        parse_cohort(text)
    message = str(raised.value)
    assert "diabetes" in message or "integer" in message


def test_an_unknown_cohort_condition_lists_every_known_key() -> None:
    with pytest.raises(InvalidOptions, match="known conditions") as raised:
        parse_cohort("cancer:10")
    assert all(key in str(raised.value) for key in CONDITION_KEYS)


def test_a_cohort_count_must_be_positive() -> None:
    with pytest.raises(InvalidOptions, match="≥ 1"):
        parse_cohort("diabetes:0")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 0}, "size must be"),
        ({"size": -5}, "size must be"),
        ({"size": True}, "size must be"),
        ({"seed": -1}, "seed must be"),
        ({"seed": 2**63}, "seed must be"),
        ({"seed": "42"}, "seed must be"),
        ({"age_min": -1}, "age_min"),
        ({"age_max": 111}, "age_max"),
        ({"age_min": 50, "age_max": 40}, "age_min must not be greater"),
        ({"sex": "other"}, "sex must be"),
        ({"state": "XX"}, "state must be"),
        ({"years_of_history": 0}, "years_of_history"),
        ({"years_of_history": 101}, "years_of_history"),
        ({"cohorts": (Cohort("diabetes", 11),)}, "more patients than size"),
        ({"cohorts": (Cohort("copd", 1),), "age_max": 20}, "can have copd"),
        ({"cohorts": (Cohort("otitis_media", 1),), "age_min": 18}, "can have otitis_media"),
        ({"reference_date": "2025-01-01"}, "reference_date"),
    ],
)
def test_invalid_options_are_refused_with_a_useful_message(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidOptions, match=message):
        options(**changes)


def test_a_state_code_is_accepted_in_any_case() -> None:
    assert options(state="ma").state == "MA"


def test_options_round_trip_through_json() -> None:
    original = options(
        age_min=5,
        age_max=70,
        sex="female",
        state="TX",
        years_of_history=3,
        cohorts=(Cohort("diabetes", 2), Cohort("asthma", 3)),
    )
    data = original.to_json()
    assert data["reference_date"] == "2025-06-30"
    assert data["cohorts"] == [
        {"condition": "diabetes", "count": 2},
        {"condition": "asthma", "count": 3},
    ]
    assert GenerationOptions.from_json(data) == original


@pytest.mark.parametrize(
    "data",
    [
        {"size": 1, "reference_date": "2025-01-01"},
        {"seed": 1, "size": 1, "reference_date": "not a date"},
        {"seed": 1, "size": 1, "reference_date": "2025-01-01", "cohorts": [{"condition": "x"}]},
        {"seed": 1, "size": 0, "reference_date": "2025-01-01"},
    ],
)
def test_malformed_json_options_are_invalid(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptions):
        GenerationOptions.from_json(data)


def test_a_datetime_reference_is_taken_as_its_date() -> None:
    moment = datetime(2025, 6, 30, 23, 59, tzinfo=UTC)
    assert options(reference_date=moment).reference_date == TODAY
