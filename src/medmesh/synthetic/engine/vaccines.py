"""Which immunizations a wellness visit gives, following the CDC schedules: the childhood
series at the scheduled well-child visits (about 93 % coverage per dose, NIS-Child), yearly
influenza at national uptake (~55 % of children, ~45 % of adults, ~70 % from 65), a Td booster
now and then, and the zoster and pneumococcal vaccines once at the recommended ages."""

from __future__ import annotations

from collections.abc import Iterator
from random import Random

from medmesh.synthetic.engine.catalog.terminology import CHILD_VACCINES_BY_MONTH

_FLU_MONTHS = frozenset({6, 12, 24, 36})
_CHILD_COVERAGE = 0.93


def immunizations_due(rng: Random, age: float, month: int, given: set[str]) -> Iterator[str]:
    """The vaccines given at a wellness visit at ``age`` (``month``: the well-child schedule
    month, 0 for adults); ``given`` remembers the once-in-a-lifetime ones."""
    random = rng.random
    if age < 18:
        for vaccine in CHILD_VACCINES_BY_MONTH.get(month, ()):
            if random() < _CHILD_COVERAGE:
                yield vaccine
        if (month in _FLU_MONTHS or month >= 48) and random() < 0.55:
            yield "influenza"
        return
    if random() < (0.45 if age < 65 else 0.7):
        yield "influenza"
    if random() < 0.1:
        yield "td"
    if age >= 50 and "zoster" not in given and random() < 0.35:
        given.add("zoster")
        yield "zoster"
    if age >= 65 and "ppsv23" not in given and random() < 0.65:
        given.add("ppsv23")
        yield "ppsv23"
