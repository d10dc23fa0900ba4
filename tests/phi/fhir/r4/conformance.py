"""The resources of ../shared/conformance (Synthea bundles' entries, HL7's R4 examples)."""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

CONFORMANCE = Path("/work/shared/conformance")


@functools.cache
def conformance_resources() -> tuple[tuple[str, dict[str, Any]], ...]:
    """``(name, resource)``: every Bundle entry's resource and every HL7 example (Bundles
    too), parsed with decimals kept as :class:`~decimal.Decimal` (as R4 requires)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(CONFORMANCE.glob("synthea*/*.json")):
        bundle = json.loads(path.read_text(), parse_float=Decimal)
        for index, entry in enumerate(bundle["entry"]):
            found.append((f"{path.parent.name}/{path.name}#{index}", entry["resource"]))
    for path in sorted((CONFORMANCE / "hl7").glob("*.json")):
        example = json.loads(path.read_text(), parse_float=Decimal)
        if "resourceType" in example:
            found.append((f"hl7/{path.name}", example))
    return tuple(found)
