"""When the patient is seen: the visits of the history window, in date order.

Wellness visits follow the age-appropriate schedule (the well-child schedule, then every three
years for young adults, every two from 40 and yearly from 65); conditions that need it bring
one or two follow-ups a year; emergency visits arrive as a Poisson process whose rate rises
with age and with heart, lung and kidney disease. Nothing is scheduled before birth, before the
window or after the record ends (the reference date, or death).
"""

from __future__ import annotations

from random import Random

from medmesh.synthetic.engine.catalog.conditions import CONDITIONS
from medmesh.synthetic.engine.catalog.terminology import WELL_CHILD_MONTHS

DAYS_PER_YEAR = 365.2425
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

#: (ordinal, kind, detail): detail is the vaccine-schedule month of a well-child visit, the
#: condition key of a problem visit, else 0.
Visit = tuple[int, str, int | str]

_FRAIL = frozenset({"copd", "chd", "ckd", "afib", "asthma"})


def wellness_visits(rng: Random, birth: int, start: int, end: int) -> list[Visit]:
    """Well-child visits by schedule, then adult wellness visits at age-based intervals."""
    visits: list[Visit] = []
    for month in WELL_CHILD_MONTHS:
        day = birth + int(month * DAYS_PER_MONTH) + (3 if month == 0 else int(rng.random() * 10))
        if start <= day <= end:
            visits.append((day, "well_child", month))
    for year in range(4, 18):
        day = birth + int(year * DAYS_PER_YEAR) + int(rng.random() * 45)
        if day > end:
            return visits
        # About 70 % of school-age children get their yearly check-up (NSCH); the vaccine
        # visits at 4, 11, 12 and 16 are kept.
        if day >= start and (year in (4, 11, 12, 16) or rng.random() < 0.7):
            visits.append((day, "well_child", year * 12))
    adult = birth + int(18 * DAYS_PER_YEAR) + int(rng.random() * 400)
    day = max(adult, start + int(rng.random() * 700))
    while day <= end:
        age = (day - birth) / DAYS_PER_YEAR
        visits.append((day, "wellness", 0))
        # Every 3 years before 40, every 2 to 64, then every 1-2 years (annual wellness visits
        # are used by about half of Medicare beneficiaries).
        interval = 3 if age < 40 else (2 if age < 65 else 1 + int(rng.random() * 2))
        day += int(interval * DAYS_PER_YEAR) - 30 + int(rng.random() * 60)
    return visits


def follow_up_visits(
    rng: Random, onsets: dict[str, int], start: int, end: int, wellness: list[Visit]
) -> list[Visit]:
    """Follow-ups once a condition that needs them has started: one a year (two for diabetes),
    except within six months of a wellness visit, which reviews the conditions instead."""
    keys = [key for key in onsets if CONDITIONS[key].follow_up]
    if not keys:
        return []
    first = max(start, min(onsets[key] for key in keys))
    per_year = 2 if "diabetes" in onsets else 1
    span = 365 // per_year
    checkups = [visit[0] for visit in wellness]
    visits: list[Visit] = []
    day = start
    while day <= end:
        for slot in range(per_year):
            visit = day + slot * span + int(rng.random() * span)
            if first <= visit <= end and not any(abs(visit - c) < 180 for c in checkups):
                visits.append((visit, "follow_up", 0))
        day += 365
    return visits


def emergency_visits(
    rng: Random, birth: int, onsets: dict[str, int], start: int, end: int
) -> list[Visit]:
    """Emergency visits: ~0.12 a year, twice that from 65, more with chronic disease."""
    frail = any(key in _FRAIL for key in onsets)
    visits: list[Visit] = []
    day = float(start)
    while True:
        age = (day - birth) / DAYS_PER_YEAR
        rate = (0.24 if age >= 65 else 0.12) * (1.6 if frail else 1.0)
        day += rng.expovariate(rate) * DAYS_PER_YEAR
        if day > end:
            return visits
        visits.append((int(day), "emergency", 0))


def schedule(rng: Random, birth: int, onsets: dict[str, int], start: int, end: int) -> list[Visit]:
    """All visits of the window, in date order (stable for visits of the same day)."""
    visits = wellness_visits(rng, birth, start, end)
    visits += follow_up_visits(rng, onsets, start, end, visits)
    visits += emergency_visits(rng, birth, onsets, start, end)
    otitis = onsets.get("otitis_media")
    if otitis is not None and start <= otitis <= end:
        visits.append((otitis, "problem", "otitis_media"))
    visits.sort(key=_day)
    return visits


def _day(visit: Visit) -> int:
    return visit[0]
