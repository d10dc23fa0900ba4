"""What a generation run is asked for: :class:`GenerationOptions` and its cohorts.

Options are validated once, here, with messages a user can act on (they never contain PHI);
the engine trusts them afterwards. ``to_json``/``from_json`` give the form recorded in the
manifest and in job rows, so a run can be reproduced from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from medmesh.synthetic.engine.catalog.conditions import CONDITION_KEYS, CONDITIONS
from medmesh.synthetic.engine.catalog.places import STATE_CODES

#: Bumped whenever the same options produce different output.
GENERATOR_VERSION = "1.0.0"

MAX_SEED = 2**63
MAX_AGE = 110
MAX_YEARS_OF_HISTORY = 100


class InvalidOptions(ValueError):
    """Options the engine refuses; the message is meant for the user and holds no PHI."""

    def __repr__(self) -> str:
        return f"InvalidOptions({str(self)!r})"


@dataclass(frozen=True)
class Cohort:
    """``count`` patients who have ``condition`` (a :data:`CONDITION_KEYS` entry)."""

    condition: str
    count: int

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise InvalidOptions(
                f"unknown cohort condition; known conditions: {', '.join(CONDITION_KEYS)}"
            )
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise InvalidOptions("a cohort's count must be an integer ≥ 1")


def parse_cohort(text: str) -> Cohort:
    """``"diabetes:1000"`` -> ``Cohort("diabetes", 1000)``; condition names ignore case and
    accept ``-`` for ``_``."""
    name, sep, count_text = text.strip().partition(":")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if not sep or key not in CONDITIONS:
        raise InvalidOptions(
            'a cohort is "condition:count" with a known condition; known conditions: '
            + ", ".join(CONDITION_KEYS)
        )
    count_text = count_text.strip()
    if not (count_text.isascii() and count_text.isdigit()) or len(count_text) > 12:
        raise InvalidOptions("a cohort's count must be an integer ≥ 1")
    return Cohort(key, int(count_text))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class GenerationOptions:
    """A run's options; patient ``i`` of a run depends only on these and ``i``."""

    seed: int
    size: int
    reference_date: date
    age_min: int = 0
    age_max: int = 90
    sex: Literal["female", "male"] | None = None
    state: str | None = None
    years_of_history: int = 10
    cohorts: tuple[Cohort, ...] = field(default=())

    def __post_init__(self) -> None:
        if not _is_int(self.seed) or not 0 <= self.seed < MAX_SEED:
            raise InvalidOptions("seed must be an integer with 0 ≤ seed < 2**63")
        if not _is_int(self.size) or self.size < 1:
            raise InvalidOptions("size must be an integer ≥ 1")
        if not isinstance(self.reference_date, date):
            raise InvalidOptions("reference_date must be a date")
        if isinstance(self.reference_date, datetime):
            object.__setattr__(self, "reference_date", self.reference_date.date())
        if self.reference_date.year - MAX_AGE - MAX_YEARS_OF_HISTORY < 1:
            raise InvalidOptions("reference_date is too early")
        for name, value in (("age_min", self.age_min), ("age_max", self.age_max)):
            if not _is_int(value) or not 0 <= value <= MAX_AGE:
                raise InvalidOptions(f"{name} must be an integer from 0 to {MAX_AGE}")
        if self.age_min > self.age_max:
            raise InvalidOptions("age_min must not be greater than age_max")
        if self.sex not in (None, "female", "male"):
            raise InvalidOptions('sex must be "female", "male" or absent')
        if self.state is not None:
            if not isinstance(self.state, str) or self.state.upper() not in STATE_CODES:
                raise InvalidOptions("state must be a US two-letter state code (or DC)")
            object.__setattr__(self, "state", self.state.upper())
        years = self.years_of_history
        if not _is_int(years) or not 1 <= years <= MAX_YEARS_OF_HISTORY:
            raise InvalidOptions(
                f"years_of_history must be an integer from 1 to {MAX_YEARS_OF_HISTORY}"
            )
        cohorts = tuple(self.cohorts)
        object.__setattr__(self, "cohorts", cohorts)
        if any(not isinstance(c, Cohort) for c in cohorts):
            raise InvalidOptions("cohorts must be Cohort values")
        if sum(c.count for c in cohorts) > self.size:
            raise InvalidOptions("the cohorts hold more patients than size")
        sexes = (False, True) if self.sex is None else (self.sex == "female",)
        for cohort in cohorts:
            if not CONDITIONS[cohort.condition].possible_in(self.age_min, self.age_max, sexes):
                raise InvalidOptions(
                    f"no patient aged {self.age_min}-{self.age_max} can have {cohort.condition}"
                )

    @property
    def cohort_total(self) -> int:
        """How many of the run's patients (the first ones) belong to a cohort."""
        return sum(c.count for c in self.cohorts)

    def to_json(self) -> dict[str, Any]:
        """The options as JSON (for the manifest and job rows)."""
        return {
            "seed": self.seed,
            "size": self.size,
            "reference_date": self.reference_date.isoformat(),
            "age_min": self.age_min,
            "age_max": self.age_max,
            "sex": self.sex,
            "state": self.state,
            "years_of_history": self.years_of_history,
            "cohorts": [{"condition": c.condition, "count": c.count} for c in self.cohorts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationOptions:
        """Options from :meth:`to_json`'s form; :class:`InvalidOptions` when they are not valid."""
        try:
            reference = date.fromisoformat(data["reference_date"])
            cohorts = tuple(
                Cohort(str(c["condition"]), c["count"]) for c in data.get("cohorts") or ()
            )
            return cls(
                seed=data["seed"],
                size=data["size"],
                reference_date=reference,
                age_min=data.get("age_min", 0),
                age_max=data.get("age_max", 90),
                sex=data.get("sex"),
                state=data.get("state"),
                years_of_history=data.get("years_of_history", 10),
                cohorts=cohorts,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidOptions):
                raise
            raise InvalidOptions(f"options are malformed ({type(exc).__name__})") from None
