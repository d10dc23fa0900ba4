"""Mapping templates: how a metric's readings become FHIR Observations, as data.

A template is a JSON file (the built-ins live in ``templates/`` beside this module; a
deployment adds its own in ``MEDMESH_DEVICES_TEMPLATE_DIR``):

```json
{"name": "heart-rate", "metric": "heart_rate", "category": "vital-signs",
 "code": {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
 "unit": "/min", "unit_display": "beats/minute", "decimals": 0,
 "components": [{"value": "systolic", "code": {...}}]}
```

``unit`` is any UCUM unit the metric accepts (glucose may be written in mmol/L); a panel's
``components`` name each value of the reading. Each metric uses one template: a file of the
directory replaces the built-in template of its metric (and of its name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medmesh.devices.errors import TemplateNotFound
from medmesh.devices.ingest.units import UnitConversion
from medmesh.devices.ingest.vitals import METRICS, Metric

BUILT_IN = Path(__file__).parent / "templates"
Category = Literal["vital-signs", "activity", "laboratory", "survey", "exam", "procedure"]


class Coding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(min_length=1, max_length=256)
    code: str = Field(min_length=1, max_length=64)
    display: str | None = Field(default=None, max_length=256)


class ComponentMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="the reading's component (e.g. systolic)")
    code: Coding


class MappingTemplate(BaseModel):
    """One metric's mapping to an Observation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")
    metric: str
    category: Category
    code: Coding
    unit: str
    unit_display: str = Field(max_length=64)
    decimals: int = Field(ge=0, le=6)
    components: list[ComponentMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fits_metric(self) -> MappingTemplate:
        metric = METRICS.get(self.metric)
        if metric is None:
            raise ValueError(f"metric: one of {', '.join(METRICS)}")
        if self.unit not in metric.units:
            raise ValueError(f"unit: for {metric.name} one of {', '.join(metric.units)}")
        if sorted(c.value for c in self.components) != sorted(metric.components):
            raise ValueError(f"components: exactly {list(metric.components)}")
        return self

    @property
    def measure(self) -> Metric:
        return METRICS[self.metric]

    @property
    def conversion(self) -> UnitConversion:
        """From the stored (canonical) unit into the template's."""
        return self.measure.units[self.unit]


class TemplateError(Exception):
    """A template file that cannot be used (the service refuses to start with it)."""


def _load_file(path: Path) -> MappingTemplate:
    try:
        return MappingTemplate.model_validate(orjson.loads(path.read_bytes()))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise TemplateError(f"mapping template {path.name}: {exc}") from None


class TemplateSet:
    """The templates in force: by name, and the one each metric uses."""

    def __init__(self, templates: list[MappingTemplate]) -> None:
        self.by_metric: dict[str, MappingTemplate] = {}
        for template in templates:
            self.by_metric[template.metric] = template
        self.by_name = {t.name: t for t in self.by_metric.values()}
        missing = set(METRICS) - set(self.by_metric)
        if missing:
            raise TemplateError(f"no mapping template for {', '.join(sorted(missing))}")

    def get(self, name: str) -> MappingTemplate:
        template = self.by_name.get(name)
        if template is None:
            raise TemplateNotFound(name)
        return template

    @classmethod
    def load(cls, directory: Path | None = None) -> TemplateSet:
        """The built-in templates, then those of ``directory`` (which replace them)."""
        templates = [_load_file(p) for p in sorted(BUILT_IN.glob("*.json"))]
        if directory is not None:
            if not directory.is_dir():
                raise TemplateError(f"template_dir {directory} is not a directory")
            templates += [_load_file(p) for p in sorted(directory.glob("*.json"))]
        return cls(templates)
