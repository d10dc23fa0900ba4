"""The US population the engine samples: age/sex pyramid, mortality, race and ethnicity."""

from __future__ import annotations

# fmt: off
#: US Census 2020 (DHC), resident population in millions by 5-year age group:
#: (first age of the group, male, female); 100-110 is the open-ended tail.
AGE_PYRAMID: tuple[tuple[int, float, float], ...] = (
    (0, 9.99, 9.56), (5, 10.39, 9.94), (10, 10.94, 10.45), (15, 11.02, 10.53),
    (20, 11.12, 10.63), (25, 11.79, 11.33), (30, 11.55, 11.22), (35, 10.93, 10.82),
    (40, 10.10, 10.10), (45, 9.86, 9.98), (50, 10.20, 10.44), (55, 10.42, 10.89),
    (60, 9.84, 10.62), (65, 8.29, 9.22), (70, 6.64, 7.62), (75, 4.42, 5.37),
    (80, 2.70, 3.58), (85, 1.50, 2.27), (90, 0.62, 1.18), (95, 0.15, 0.40),
    (100, 0.02, 0.08), (105, 0.002, 0.008),
)

#: US life tables 2019 (NVSS), probability of dying within a year, by age from which it applies:
#: (age, male, female).
ANNUAL_MORTALITY: tuple[tuple[int, float, float], ...] = (
    (0, 0.0061, 0.0051), (1, 0.00028, 0.00022), (5, 0.00013, 0.00011), (15, 0.00070, 0.00030),
    (20, 0.0014, 0.0005), (25, 0.0017, 0.0007), (35, 0.0026, 0.0014), (45, 0.0050, 0.0031),
    (55, 0.0103, 0.0062), (65, 0.0185, 0.0123), (70, 0.0280, 0.0190), (75, 0.0430, 0.0310),
    (80, 0.0680, 0.0500), (85, 0.1120, 0.0870), (90, 0.1800, 0.1500), (95, 0.2900, 0.2500),
    (100, 0.4000, 0.3600),
)

OMB_RACE_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
#: OMB race categories (CDC race & ethnicity code system).
RACES: dict[str, tuple[str, str]] = {
    "white": ("2106-3", "White"),
    "black": ("2054-5", "Black or African American"),
    "asian": ("2028-9", "Asian"),
    "aian": ("1002-5", "American Indian or Alaska Native"),
    "nhpi": ("2076-8", "Native Hawaiian or Other Pacific Islander"),
}
#: "Some other race" is a detailed code, not an OMB category.
OTHER_RACE: tuple[str, str] = ("2131-1", "Other Race")
HISPANIC: tuple[str, str] = ("2135-2", "Hispanic or Latino")
NOT_HISPANIC: tuple[str, str] = ("2186-5", "Not Hispanic or Latino")

#: US Census 2020 redistricting data, shares of the population:
#: (hispanic, races (keys of RACES, "other" for some other race), share). Two races = multiracial.
RACE_ETHNICITY: tuple[tuple[bool, tuple[str, ...], float], ...] = (
    (False, ("white",), 0.578), (False, ("black",), 0.121), (False, ("asian",), 0.059),
    (False, ("aian",), 0.007), (False, ("nhpi",), 0.002), (False, ("other",), 0.005),
    (False, ("white", "black"), 0.013), (False, ("white", "asian"), 0.010),
    (False, ("white", "aian"), 0.012), (False, ("black", "aian"), 0.004),
    (True, ("white",), 0.038), (True, ("other",), 0.077), (True, ("white", "other"), 0.050),
    (True, ("black",), 0.004), (True, ("aian",), 0.007), (True, ("white", "aian"), 0.011),
    (True, ("asian",), 0.001),
)
# fmt: on
