"""Demo FHIR resources that ``medmesh up`` loads into a fresh phi-service.

The files in ``resources/`` are unchanged copies of official FHIR R4 4.0.1 examples
(package hl7.fhir.r4.examples, CC0-1.0): Patient/example, Practitioner/example and four
of her vital-sign Observations. They are fictional people.

Seeding goes through the HTTP API (create-on-update with the examples' own ids) with an
access token, exactly as a client would, so it is audited like any other write; a resource
that already exists is left alone, so running ``medmesh up`` again changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

RESOURCES = Path(__file__).parent / "resources"
FHIR_JSON = "application/fhir+json"
#: Referenced resources before the ones that reference them.
ORDER = ("Practitioner", "Patient", "Observation")


def demo_resources() -> list[dict[str, Any]]:
    """The demo resources, referenced ones first."""
    loaded = [json.loads(path.read_text()) for path in sorted(RESOURCES.glob("*.json"))]
    return sorted(loaded, key=lambda r: (ORDER.index(r["resourceType"]), r["id"]))


@dataclass
class SeedReport:
    """What seeding did: references created now, and those that were already there."""

    created: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


async def seed_demo(fhir_base: str, token: str) -> SeedReport:
    """PUT every demo resource that ``fhir_base`` (``http://host:port/fhir``) lacks."""
    headers = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}
    async with httpx.AsyncClient(
        base_url=fhir_base.rstrip("/"), headers=headers, timeout=30.0
    ) as http:
        return await seed_demo_with(http)


async def seed_demo_with(http: httpx.AsyncClient) -> SeedReport:
    """Seed through ``http``, a client whose base URL is the FHIR base and that sends a token."""
    report = SeedReport()
    for resource in demo_resources():
        reference = f"{resource['resourceType']}/{resource['id']}"
        existing = await http.get(f"/{reference}")
        if existing.status_code == 200:
            report.present.append(reference)
            continue
        written = await http.put(
            f"/{reference}",
            content=json.dumps(resource),
            headers={"Content-Type": FHIR_JSON, "Prefer": "return=minimal"},
        )
        if written.status_code not in (200, 201):
            raise RuntimeError(
                f"seeding {reference} answered {written.status_code}: {written.text[:300]}"
            )
        report.created.append(reference)
    return report
