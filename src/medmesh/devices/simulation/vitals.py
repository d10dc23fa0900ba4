"""Realistic vitals for simulated devices, without I/O: each device has its own baseline and
drifts around it (a bounded random walk); now and then an episode (low SpO2, tachycardia, fever)
runs for a few minutes of reading time, enough to trip alert rules such as "SpO2 < 90 % for 60
s". The same seed gives the same readings."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: metric -> (baseline mean, baseline spread, step, low, high, unit, decimals)
SIGNALS: dict[str, tuple[float, float, float, float, float, str, int]] = {
    "heart_rate": (72, 8, 2.0, 45, 130, "/min", 0),
    "spo2": (97, 1.0, 0.4, 92, 100, "%", 0),
    "respiratory_rate": (15, 2, 0.5, 10, 24, "/min", 0),
    "body_temperature": (36.8, 0.3, 0.05, 36.0, 37.6, "Cel", 1),
}
#: episode -> (metric, value during it, seconds it lasts)
EPISODES: dict[str, tuple[str, float, float]] = {
    "desaturation": ("spo2", 86, 150),
    "tachycardia": ("heart_rate", 142, 150),
    "fever": ("body_temperature", 38.9, 600),
}


@dataclass
class DeviceVitals:
    """One simulated device's state."""

    device_id: str
    rng: random.Random
    anomaly_probability: float
    #: Part of every reading id, so that another run of the same device sends new readings.
    run: str = "0"
    values: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    systolic: float = 0.0
    episode: tuple[str, datetime] | None = None
    sequence: int = 0

    def __post_init__(self) -> None:
        for metric, (mean, spread, *_rest) in SIGNALS.items():
            self.baseline[metric] = self.rng.gauss(mean, spread)
            self.values[metric] = self.baseline[metric]
        self.systolic = self.rng.gauss(122, 10)

    def _step(self, metric: str) -> float:
        _, _, step, low, high, _, _ = SIGNALS[metric]
        value = self.values[metric] + self.rng.gauss(0, step)
        value += (self.baseline[metric] - value) * 0.1  # drift back towards the baseline
        self.values[metric] = min(high, max(low, value))
        return self.values[metric]

    def next_readings(self, at: datetime) -> list[dict[str, Any]]:
        """One tick's readings: heart rate, SpO2, respiratory rate, temperature, and a blood
        pressure every tenth tick."""
        if self.episode is not None and at >= self.episode[1]:
            self.episode = None
        if self.episode is None and self.rng.random() < self.anomaly_probability:
            name = self.rng.choice(sorted(EPISODES))
            self.episode = (name, at + timedelta(seconds=EPISODES[name][2]))
        readings = []
        for metric in SIGNALS:
            value = self._step(metric)
            if self.episode is not None and EPISODES[self.episode[0]][0] == metric:
                value = EPISODES[self.episode[0]][1] + self.rng.gauss(0, 0.5)
            readings.append(
                self._reading(at, metric, round(value, SIGNALS[metric][6]), SIGNALS[metric][5])
            )
        if self.sequence % 10 == 0:
            systolic = round(self.systolic + self.rng.gauss(0, 5))
            pressure = {
                "systolic": systolic,
                "diastolic": round(systolic * 0.65 + self.rng.gauss(0, 3)),
            }
            readings.append(self._reading(at, "blood_pressure", pressure, "mm[Hg]"))
        self.sequence += 1
        return readings

    def _reading(self, at: datetime, metric: str, value: Any, unit: str) -> dict[str, Any]:
        return {
            "reading_id": f"sim-{self.run}-{self.sequence}-{metric}",
            "timestamp": at.isoformat(),
            "metric": metric,
            "value": value,
            "unit": unit,
        }
