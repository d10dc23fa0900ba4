"""FHIR dates as UTC ranges ``[low, high)`` for precision-aware comparisons.

``2020`` covers the whole year, ``2020-05`` the month, ``2020-05-10`` the day, and a
dateTime the second (or fraction) it names. Values without a zone are taken as UTC.
"""

from __future__ import annotations

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


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """The UTC range a FHIR date/dateTime/instant covers, or None when ``text`` is not one."""
    match = _PATTERN.match(text.strip())
    if match is None:
        return None
    g = match.groupdict()
    zone = UTC
    if g["zone"] and g["zone"] != "Z":
        sign = -1 if g["zone"][0] == "-" else 1
        hours, minutes = int(g["zone"][1:3]), int(g["zone"][4:6])
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        if g["month"] is None:
            low = datetime(int(g["year"]), 1, 1, tzinfo=UTC)
            return low, _add_months(low, 12)
        if g["day"] is None:
            low = datetime(int(g["year"]), int(g["month"]), 1, tzinfo=UTC)
            return low, _add_months(low, 1)
        if g["hour"] is None:
            low = datetime(int(g["year"]), int(g["month"]), int(g["day"]), tzinfo=UTC)
            return low, _plus(low, timedelta(days=1))
        fraction = g["fraction"] or ""
        micro = int((fraction + "000000")[:6])
        low = datetime(
            int(g["year"]),
            int(g["month"]),
            int(g["day"]),
            int(g["hour"]),
            int(g["minute"]),
            int(g["second"] or 0),
            micro,
            tzinfo=zone,
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # no such date, or one outside what datetime can hold
        return None
    if g["second"] is None:
        step = timedelta(minutes=1)
    elif fraction:
        step = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    else:
        step = timedelta(seconds=1)
    return low, _plus(low, step)
