"""FHIR dates as UTC ranges: the reading with its cached offsets and steps, against the plain
reading spelt out here, on generated dates, dateTimes and instants (valid and not)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from medmesh.phi.search.dates import _PATTERN, _add_months, _plus, date_range


def _plain(text: str) -> tuple[datetime, datetime] | None:
    match = _PATTERN.match(text.strip())
    if match is None:
        return None
    g = match.groupdict()
    zone = UTC
    try:
        if g["zone"] and g["zone"] != "Z":
            sign = -1 if g["zone"][0] == "-" else 1
            hours, minutes = int(g["zone"][1:3]), int(g["zone"][4:6])
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
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
        low = datetime(
            int(g["year"]),
            int(g["month"]),
            int(g["day"]),
            int(g["hour"]),
            int(g["minute"]),
            int(g["second"] or 0),
            int((fraction + "000000")[:6]),
            tzinfo=zone,
        ).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if g["second"] is None:
        step = timedelta(minutes=1)
    elif fraction:
        step = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    else:
        step = timedelta(seconds=1)
    return low, _plus(low, step)


def _reading(read: object, text: str) -> object:
    try:
        return read(text)  # type: ignore[operator]
    except ValueError as exc:
        return ("refused", type(exc))


def _generated(draw: random.Random) -> str:
    year = draw.choice(["0001", "1965", "2019", "2024", "9999", "0000"])
    parts = [year]
    for width, values in ((2, range(0, 14)), (2, range(0, 33))):
        if draw.random() < 0.15:
            return "-".join(parts)
        parts.append(f"{draw.choice(list(values)):0{width}d}")
    text = "-".join(parts)
    if draw.random() < 0.2:
        return text
    text += f"T{draw.randint(0, 25):02d}:{draw.randint(0, 61):02d}"
    if draw.random() < 0.85:
        text += f":{draw.randint(0, 61):02d}"
        if draw.random() < 0.4:
            text += "." + "".join(draw.choice("0123456789") for _ in range(draw.randint(1, 9)))
    zone = draw.choice(["", "Z", "+00:00", "-05:00", "+05:30", "+14:00", "-12:00", "+23:59"])
    return text + zone + draw.choice(["", "", " ", "x"])


def test_the_reading_is_the_plain_reading_on_generated_dates() -> None:
    draw = random.Random(41)
    texts = [_generated(draw) for _ in range(30_000)]
    read = [_reading(date_range, t) for t in texts]
    assert read == [_reading(_plain, t) for t in texts]
    assert sum(r is None for r in read) > 1000
    assert sum(isinstance(r, tuple) and isinstance(r[0], datetime) for r in read) > 10_000


def test_an_offset_of_a_day_or_more_is_not_a_date() -> None:
    for offset in ("+24:00", "-99:99"):
        assert date_range(f"2019-02-17T14:45:01{offset}") is None
    assert date_range("2019-02-17T14:45:01+14:00") == (
        datetime(2019, 2, 17, 0, 45, 1, tzinfo=UTC),
        datetime(2019, 2, 17, 0, 45, 2, tzinfo=UTC),
    )


def test_a_date_in_the_last_year_ends_with_time_itself() -> None:
    assert date_range("9999") == (
        datetime(9999, 1, 1, tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    )
    assert date_range("2019-02-17T14:45:01.5-05:00") == (
        datetime(2019, 2, 17, 19, 45, 1, 500000, tzinfo=UTC),
        datetime(2019, 2, 17, 19, 45, 1, 600000, tzinfo=UTC),
    )
