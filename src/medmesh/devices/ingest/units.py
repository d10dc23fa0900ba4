"""UCUM units a reading may come in, and their conversion to each metric's canonical unit.

Only case-sensitive UCUM codes are accepted (``Cel``, ``[degF]``, ``kg``, ``[lb_av]``,
``mg/dL``, ``mmol/L`` ...); a unit outside a metric's list is refused, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: g/mol of glucose (C6H12O6): 1 mmol/L of glucose is 18.016 mg/dL.
GLUCOSE_MOLAR_MASS = 180.156
LB_AV_KG = 0.45359237


def _scale(factor: float) -> Callable[[float], float]:
    return lambda value: value * factor


def _identity(value: float) -> float:
    return value


def _fahrenheit_to_celsius(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


def _celsius_to_fahrenheit(value: float) -> float:
    return value * 9.0 / 5.0 + 32.0


def mmol_per_l_to_mg_per_dl(value: float) -> float:
    return value * GLUCOSE_MOLAR_MASS / 10.0


def mg_per_dl_to_mmol_per_l(value: float) -> float:
    return value * 10.0 / GLUCOSE_MOLAR_MASS


@dataclass(frozen=True, slots=True)
class UnitConversion:
    """From ``unit`` into a canonical unit, and back (a template may ask for either)."""

    unit: str
    to_canonical: Callable[[float], float]
    from_canonical: Callable[[float], float]


def same(unit: str) -> UnitConversion:
    return UnitConversion(unit, _identity, _identity)


def scaled(unit: str, factor: float) -> UnitConversion:
    """``unit`` is ``factor`` canonical units."""
    return UnitConversion(unit, _scale(factor), _scale(1.0 / factor))


FAHRENHEIT = UnitConversion("[degF]", _fahrenheit_to_celsius, _celsius_to_fahrenheit)
GLUCOSE_MMOL = UnitConversion("mmol/L", mmol_per_l_to_mg_per_dl, mg_per_dl_to_mmol_per_l)
POUNDS = scaled("[lb_av]", LB_AV_KG)
