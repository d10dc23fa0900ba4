"""FHIR dates as UTC ranges ``[low, high)`` for precision-aware comparisons.

``2020`` covers the whole year, ``2020-05`` the month, ``2020-05-10`` the day, and a
dateTime the second (or fraction) it names. Values without a zone are taken as UTC.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone

#: Open ends of a Period (and the sort place of a resource with no date).
MIN_DATE = datetime(1, 1, 2, tzinfo=UTC)
MAX_DATE = datetime(9999, 12, 30, tzinfo=UTC)

_PATTERN = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year = moment.year + month // 12
    if year > datetime.max.year:
        return _END_OF_TIME  # the range of a date in year 9999 ends with time itself
    return moment.replace(year=year, month=month % 12 + 1)


def _plus(moment: datetime, step: timedelta) -> datetime:
    try:
        return moment + step
    except OverflowError:
        return _END_OF_TIME


@functools.lru_cache(maxsize=64)
def _zone(text: str) -> timezone:
    """The fixed offset ``±hh:mm`` names (``timezone`` refuses one of a day or more)."""
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


_DAY, _MINUTE, _SECOND = timedelta(days=1), timedelta(minutes=1), timedelta(seconds=1)
#: The span of a time given to 1 … 9 fractional digits (a microsecond at most).
_FRACTION_STEPS = {n: timedelta(microseconds=10 ** max(0, 6 - n)) for n in range(1, 10)}


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """The UTC range a FHIR date/dateTime/instant covers, or None when ``text`` is not one."""
    match = _PATTERN.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone_text = match.groups()
    try:
        # An offset of a day or more (``+24:00``) is no offset: ``timezone`` refuses it.
        zone = _zone(zone_text) if zone_text and zone_text != "Z" else UTC
        if month is None:
            low = datetime(int(year), 1, 1, tzinfo=UTC)
            return low, _add_months(low, 12)
        if day is None:
            low = datetime(int(year), int(month), 1, tzinfo=UTC)
            return low, _add_months(low, 1)
        if hour is None:
            low = datetime(int(year), int(month), int(day), tzinfo=UTC)
            return low, _plus(low, _DAY)
        micro = int((fraction + "000000")[:6]) if fraction else 0
        low = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            micro,
            tzinfo=zone,
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # no such date, or one outside what datetime can hold
        return None
    if second is None:
        step = _MINUTE
    elif fraction:
        step = _FRACTION_STEPS[len(fraction)]
    else:
        step = _SECOND
    return low, _plus(low, step)
