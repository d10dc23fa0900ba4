"""FHIR instants: UTC with milliseconds, the same text for one moment however it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from medmesh.phi.fhir.types import fhir_instant


def test_an_instant_is_utc_milliseconds_whatever_zone_the_moment_is_in() -> None:
    moment = datetime(2026, 12, 4, 18, 0, 0, 123456, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))

    assert fhir_instant(moment) == "2026-12-04T18:00:00.123Z"
    assert fhir_instant(elsewhere) == "2026-12-04T18:00:00.123Z"
    assert fhir_instant(moment) == "2026-12-04T18:00:00.123Z"
    assert fhir_instant(moment + timedelta(milliseconds=1)) == "2026-12-04T18:00:00.124Z"
    assert fhir_instant(elsewhere + timedelta(days=1)) == "2026-12-05T18:00:00.123Z"
