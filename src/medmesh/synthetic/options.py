"""The generation options a request carries, and their translation into the engine's options.

The schema checks shapes and documents the API; the engine's :class:`GenerationOptions` decides
what is valid (age ranges, cohorts, states) and its message goes back to the caller as a 400.
Fields left out take the engine's defaults; a missing seed is drawn at random and echoed back in
the job (and the manifest), so every run can be repeated exactly.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from medmesh.synthetic.engine import GenerationOptions, InvalidOptions, parse_cohort
from medmesh.synthetic.errors import InvalidGenerationOptions, RunTooLarge

MAX_SEED = 2**63
MAX_COHORTS = 32


class CohortSpec(BaseModel):
    """``count`` patients who have ``condition`` (generated directly, not by rejection)."""

    model_config = ConfigDict(extra="forbid")

    condition: str = Field(max_length=64, examples=["diabetes"])
    count: StrictInt = Field(ge=1, examples=[10])


class GenerationRequest(BaseModel):
    """What to generate. Only ``size`` is required."""

    model_config = ConfigDict(extra="forbid")

    size: StrictInt = Field(ge=1, description="patients in the run, cohorts included")
    seed: StrictInt | None = Field(
        default=None,
        ge=0,
        lt=MAX_SEED,
        description="0 ≤ seed < 2^63; the same seed and options give the same bytes. "
        "Omitted: a random seed, returned with the result.",
    )
    age_min: StrictInt | None = Field(default=None, ge=0, le=110, description="default 0")
    age_max: StrictInt | None = Field(default=None, ge=0, le=110, description="default 90")
    sex: Literal["female", "male"] | None = Field(default=None, description="default: both")
    state: str | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="US state code (MA); default: states weighted by population",
    )
    reference_date: date | None = Field(
        default=None, description="the run's 'today' (histories end there); default: today (UTC)"
    )
    years_of_history: StrictInt | None = Field(
        default=None, ge=1, le=100, description="years of encounters before the reference date"
    )
    cohorts: list[CohortSpec | str] = Field(
        default_factory=list,
        max_length=MAX_COHORTS,
        description='patients with a condition, as "diabetes:10" or {"condition": "diabetes", '
        '"count": 10}; the first patients of the run, in order',
    )


#: Options that keep the engine's default when the request leaves them out.
ENGINE_OPTIONAL = ("age_min", "age_max", "sex", "state", "years_of_history")


def _engine_fields(request: GenerationRequest) -> dict[str, Any]:
    return {
        name: value for name in ENGINE_OPTIONAL if (value := getattr(request, name)) is not None
    }


def generation_options(
    request: GenerationRequest, *, today: date, max_size: int, limit_name: str
) -> GenerationOptions:
    """The engine's options for ``request``; 400 when the engine refuses them or the run is
    larger than ``max_size`` (``limit_name`` says which limit, for the message)."""
    if request.size > max_size:
        raise RunTooLarge(f"size {request.size} is above the {limit_name} of {max_size} patients")
    try:
        cohorts = tuple(
            parse_cohort(c if isinstance(c, str) else f"{c.condition}:{c.count}")
            for c in request.cohorts
        )
        return GenerationOptions(
            seed=request.seed if request.seed is not None else secrets.randbelow(MAX_SEED),
            size=request.size,
            reference_date=request.reference_date or today,
            cohorts=cohorts,
            **_engine_fields(request),
        )
    except InvalidOptions as exc:
        raise InvalidGenerationOptions(str(exc)) from None
