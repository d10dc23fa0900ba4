"""Condition sampling calibrated to the prevalence targets, with comorbidity and cohorts.

For one stratum (an age in years and a sex) the four core conditions form a 16-state joint
distribution built in order: each core condition's probability given the earlier ones is
``min(1, scale * relative_risk)`` with ``scale`` solved so that its marginal equals the target.
The other conditions depend only on the core state, calibrated the same way. So a population
sample has every condition at its target prevalence *and* the comorbidity structure.

A cohort forces one condition: the core state is drawn from its distribution *given* that
condition (Bayes: joint weight times the condition's probability in each state), then the
remaining conditions conditionally — no rejection sampling. Cohort ages and sexes come from
the population pyramid weighted by the condition's prevalence (:func:`cohort_age_weights`).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

from medmesh.synthetic.engine.catalog.conditions import (
    CONDITIONS,
    CORE_KEYS,
    MAX_AGE,
    OTHER_KEYS,
)

_STATES = 16


def _scale_for(target: float, weights: list[float], risks: list[float]) -> float:
    """``scale`` with ``sum(w * min(1, scale * r)) == target`` (weights sum to 1)."""
    if target <= 0:
        return 0.0
    base = sum(w * r for w, r in zip(weights, risks, strict=True))
    scale = target / base
    if scale * max(risks) <= 1.0:
        return scale
    low, high = scale, 1.0 / min(risks)
    for _ in range(60):
        middle = (low + high) / 2
        got = sum(w * min(1.0, middle * r) for w, r in zip(weights, risks, strict=True))
        if got < target:
            low = middle
        else:
            high = middle
    return high


def _risks(key: str) -> list[float]:
    """The relative risk of ``key`` in each core state (product over present parents)."""
    parents = CONDITIONS[key].parents
    risks = []
    for state in range(_STATES):
        risk = 1.0
        for bit, core in enumerate(CORE_KEYS):
            if state >> bit & 1 and core in parents:
                risk *= parents[core]
        risks.append(risk)
    return risks


_RISKS = {key: _risks(key) for key in CONDITIONS}


@dataclass(frozen=True)
class Stratum:
    """The calibrated condition model for one age (years) and sex."""

    #: probability of each core state (bit i = CORE_KEYS[i] present)
    joint: tuple[float, ...]
    #: cumulative ``joint`` for sampling
    cumulative: tuple[float, ...]
    #: OTHER_KEYS[j] -> its probability in each core state
    other: tuple[tuple[float, ...], ...]


@cache
def stratum(age: int, female: bool) -> Stratum:
    """The calibrated model for ``age`` and sex (computed once per process)."""
    joint = [1.0] + [0.0] * (_STATES - 1)
    for bit, key in enumerate(CORE_KEYS):
        target = CONDITIONS[key].prevalence(age, female)
        risks = _RISKS[key]
        scale = _scale_for(target, joint, risks)
        updated = [0.0] * _STATES
        for state, weight in enumerate(joint):
            if weight:
                p = min(1.0, scale * risks[state])
                updated[state] += weight * (1 - p)
                updated[state | 1 << bit] += weight * p
        joint = updated
    other = []
    for key in OTHER_KEYS:
        target = CONDITIONS[key].prevalence(age, female)
        risks = _RISKS[key]
        scale = _scale_for(target, joint, risks)
        other.append(tuple(min(1.0, scale * r) for r in risks))
    cumulative = list(accumulate(joint))
    cumulative[-1] = 1.0
    return Stratum(tuple(joint), tuple(cumulative), tuple(other))


def core_state_weights(age: int, female: bool, forced: str | None) -> tuple[float, ...]:
    """Cumulative weights of the core states, given that ``forced`` (if any) is present."""
    model = stratum(age, female)
    if forced is None:
        return model.cumulative
    return _forced_cumulative(age, female, forced)


@cache
def _forced_cumulative(age: int, female: bool, forced: str) -> tuple[float, ...]:
    model = stratum(age, female)
    if forced in CORE_KEYS:
        bit = CORE_KEYS.index(forced)
        weights = [w if s >> bit & 1 else 0.0 for s, w in enumerate(model.joint)]
    else:
        probs = model.other[OTHER_KEYS.index(forced)]
        weights = [w * p for w, p in zip(model.joint, probs, strict=True)]
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"{forced} is impossible at age {age}")
    cumulative = list(accumulate(w / total for w in weights))
    cumulative[-1] = 1.0
    return tuple(cumulative)


def sample_conditions(
    age: int, female: bool, forced: str | None, draw: float, draws: list[float]
) -> list[str]:
    """The condition keys of a patient; ``draw`` picks the core state, ``draws`` (one per
    :data:`OTHER_KEYS`) decide the others."""
    cumulative = core_state_weights(age, female, forced)
    state = bisect_left(cumulative, draw)
    if state >= _STATES:
        state = _STATES - 1
    keys = [key for bit, key in enumerate(CORE_KEYS) if state >> bit & 1]
    other = stratum(age, female).other
    for index, key in enumerate(OTHER_KEYS):
        if key == forced or draws[index] < other[index][state]:
            keys.append(key)
    return keys


@cache
def _onset_curve(key: str, female: bool) -> tuple[float, ...]:
    """Running maximum of the prevalence by whole year of age (the onset distribution)."""
    spec = CONDITIONS[key]
    return tuple(accumulate((spec.prevalence(a, female) for a in range(MAX_AGE + 2)), max))


def onset_age(key: str, female: bool, age: int, draw: float, fraction: float) -> float:
    """Age (years, fractional) at onset for a patient of ``age`` who has ``key``.

    With prevalence ``p`` rising with age, ``P(onset <= x) = p(x) / p(age)``: onsets follow
    the prevalence curve, so a condition of the old starts late and a childhood one early.
    """
    curve = _onset_curve(key, female)
    target = draw * curve[age]
    year = bisect_left(curve, target, 0, age + 1)
    if year == 0:
        return fraction * 0.5
    low, high = curve[year - 1], curve[year]
    share = (target - low) / (high - low) if high > low else fraction
    return min(year - 1 + share, float(age) + fraction * 0.999)


def cohort_age_weights(
    key: str | None, ages: range, sexes: tuple[bool, ...], pyramid: dict[tuple[int, bool], float]
) -> tuple[list[tuple[int, bool]], list[float]]:
    """Strata and cumulative weights: the pyramid, times the condition's prevalence for a
    cohort (so cohort members have the ages and sexes of people with the condition)."""
    strata, weights = [], []
    for age in ages:
        for female in sexes:
            weight = pyramid[(age, female)]
            if key is not None:
                weight *= CONDITIONS[key].prevalence(age, female)
            if weight > 0:
                strata.append((age, female))
                weights.append(weight)
    return strata, list(accumulate(weights))
