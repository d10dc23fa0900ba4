"""The resource types of R4 and those phi-service stores, and the shapes of FHIR ids."""

from __future__ import annotations

import functools
import gzip
import re
from datetime import UTC, datetime
from importlib import resources

import orjson


def _r4_resource_types() -> frozenset[str]:
    packed = resources.files("medmesh.phi.fhir.r4").joinpath("data", "elements.json.gz")
    return frozenset(orjson.loads(gzip.decompress(packed.read_bytes()))["resources"])


#: The 146 resource types of FHIR R4 (4.0.1), from the vendored definitions.
R4_RESOURCE_TYPES: frozenset[str] = _r4_resource_types()

#: Types not stored through the type routes: phi writes its own AuditEvents (served read-only
#: under ``/fhir/AuditEvent``); OperationOutcome and Parameters are messages, never persisted.
NOT_STORED: frozenset[str] = frozenset({"AuditEvent", "OperationOutcome", "Parameters"})

#: The types phi-service stores: every other R4 resource type.
SUPPORTED_TYPES: frozenset[str] = R4_RESOURCE_TYPES - NOT_STORED

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))


@functools.lru_cache(maxsize=256)
def fhir_instant(moment: datetime) -> str:
    """A FHIR ``instant`` (UTC, milliseconds, ``Z``). Remembered: a Bundle's or an import
    chunk's resources share one moment."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
