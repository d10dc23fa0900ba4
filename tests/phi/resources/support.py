"""Shared test data and probes of the phi-service tests (resources, access, audit)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select

from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.platform.audit import AuditEntry, list_records

VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"


def patient(family: str = "Testperson", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Alex"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
        **extra,
    }


def observation(patient_id: str, category: str = "vital-signs", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        **extra,
    }


def consent(patient_id: str, provision_type: str = "deny", **provision: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}
            ]
        },
        "provision": {"type": provision_type, **provision},
    }


async def stored_rows(app: FastAPI) -> tuple[int, int]:
    """How many current rows and versions the store holds."""
    async with app.state.database.sessionmaker() as session:
        current = await session.scalar(select(func.count()).select_from(ResourceRow))
        versions = await session.scalar(select(func.count()).select_from(ResourceVersionRow))
    return int(current or 0), int(versions or 0)


async def audit_records(app: FastAPI, **filters: Any) -> list[AuditEntry]:
    """Every audit record of the app's trail matching ``filters`` (oldest first)."""
    found: list[AuditEntry] = []
    after: int | None = None
    while True:
        page = await list_records(app.state.audit.database, after_seq=after, limit=1000, **filters)
        found.extend(page)
        if len(page) < 1000:
            return found
        after = page[-1].seq
