"""The metrics a reading may carry: canonical UCUM unit, the units converted into it, the
components of a panel, and the physiological bounds a plausible value lies within."""

from __future__ import annotations

from dataclasses import dataclass

from medmesh.devices.ingest.units import (
    FAHRENHEIT,
    GLUCOSE_MMOL,
    POUNDS,
    UnitConversion,
    same,
    scaled,
)


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    #: The UCUM unit readings are stored in.
    unit: str
    #: Every accepted unit (the canonical one included), by UCUM code.
    units: dict[str, UnitConversion]
    #: Inclusive bounds of a plausible value, in the canonical unit, per component.
    bounds: dict[str, tuple[float, float]]
    #: A panel's component names (blood pressure: systolic, diastolic); empty for one value.
    components: tuple[str, ...] = ()


def _metric(
    name: str,
    unit: str,
    low: float,
    high: float,
    *extra: UnitConversion,
) -> Metric:
    units = {unit: same(unit), **{c.unit: c for c in extra}}
    return Metric(name, unit, units, {"value": (low, high)})


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        _metric("heart_rate", "/min", 20, 300, same("{beats}/min")),
        _metric("spo2", "%", 50, 100),
        Metric(
            "blood_pressure",
            "mm[Hg]",
            {"mm[Hg]": same("mm[Hg]"), "kPa": scaled("kPa", 7.500617)},
            {"systolic": (40, 300), "diastolic": (20, 200)},
            ("systolic", "diastolic"),
        ),
        _metric("body_temperature", "Cel", 25, 45, FAHRENHEIT),
        _metric("respiratory_rate", "/min", 2, 80, same("{breaths}/min")),
        _metric("body_weight", "kg", 0.2, 700, POUNDS, scaled("g", 0.001)),
        _metric("glucose", "mg/dL", 10, 1000, GLUCOSE_MMOL),
        _metric("steps", "{steps}", 0, 200_000),
    )
}
