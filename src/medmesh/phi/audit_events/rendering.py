"""One audit record as a FHIR R4 ``AuditEvent`` (RESTful operation, IHE BALP style).

The record's action (``fhir.read`` ...) becomes the ``subtype`` (the FHIR
restful-interaction code, plus our own action name under ``ACTION_SYSTEM``) and the
``action`` letter (C/R/U/D/E: searches, operations, transactions and batches are
E "execute", as IHE BALP has it). The caller is the requesting agent (``who`` = the
token's ``sub``, with its client, roles and network address); a break-glass access
carries ``purposeOfEvent``/``purposeOfUse`` BTG with the reason as text. Every patient
the record names is an entity ``Patient/<id>``, and the resource it touched another.
"""

from __future__ import annotations

from typing import Any

from medmesh.phi.fhir.types import fhir_instant
from medmesh.platform.audit import AuditEntry

ACTION_SYSTEM = "urn:medmesh:audit-action"
SUB_SYSTEM = "urn:medmesh:sub"
CLIENT_SYSTEM = "urn:medmesh:client-id"
ROLE_SYSTEM = "urn:medmesh:role"
REQUEST_ID_EXTENSION = "urn:medmesh:request-id"
OBSERVER = "medmesh-phi"

_INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
_EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_BTG = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "BTG",
    "display": "break the glass",
}
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_SOURCE_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
    "code": "4",
    "display": "Application Server",
}

#: Our action -> (restful-interaction code, AuditEvent.action).
ACTIONS: dict[str, tuple[str, str]] = {
    "fhir.create": ("create", "C"),
    "fhir.read": ("read", "R"),
    "fhir.vread": ("vread", "R"),
    "fhir.update": ("update", "U"),
    "fhir.patch": ("patch", "U"),
    "fhir.delete": ("delete", "D"),
    "fhir.history": ("history", "R"),
    "fhir.history-instance": ("history-instance", "R"),
    "fhir.history-type": ("history-type", "R"),
    "fhir.history-system": ("history-system", "R"),
    "fhir.search": ("search-type", "E"),
    "fhir.search-system": ("search-system", "E"),
    "fhir.everything": ("operation", "E"),
    "fhir.operation": ("operation", "E"),
    "fhir.transaction": ("transaction", "E"),
    "fhir.batch": ("batch", "E"),
    "fhir.capabilities": ("capabilities", "E"),
}


def action_letter(action: str) -> str:
    """C/R/U/D/E of one of our actions (unknown actions execute: E)."""
    return ACTIONS.get(action, ("operation", "E"))[1]


def actions_for_letters(letters: set[str]) -> set[str]:
    """Our actions whose AuditEvent.action is one of ``letters``."""
    return {action for action, (_, letter) in ACTIONS.items() if letter in letters}


def actions_for_subtypes(codes: set[str]) -> set[str]:
    """Our actions named by ``codes``: our own names (``fhir.read``) or interaction codes (``read``)."""
    found = {code for code in codes if "." in code}
    found |= {action for action, (interaction, _) in ACTIONS.items() if interaction in codes}
    return found


def _outcome(outcome: str) -> str:
    # 0 success, 4 minor failure (refused, not found ...), 8 serious failure (server side).
    return {"success": "0", "failure": "4"}.get(outcome, "8")


def _details(details: dict[str, Any]) -> list[dict[str, Any]]:
    # Details are non-PHI by contract (ids, counts, flags); only scalars are shown.
    shown = []
    for key in sorted(details):
        value = details[key]
        if isinstance(value, bool | int | float | str):
            shown.append(
                {
                    "type": str(key),
                    "valueString": str(value).lower() if isinstance(value, bool) else str(value),
                }
            )
    return shown


def audit_event(entry: AuditEntry) -> dict[str, Any]:
    """The AuditEvent of one stored audit record (its ``id`` is the record's ``seq``)."""
    interaction, letter = ACTIONS.get(entry.action, ("operation", "E"))
    recorded = fhir_instant(entry.ts)
    details = entry.details or {}
    break_glass = bool(details.get("break_glass"))
    purpose = (
        [{"coding": [_BTG], "text": entry.purpose or "break the glass"}] if break_glass else []
    )

    requestor: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                    "code": "humanuser",
                    "display": "human user",
                }
            ]
        },
        "who": {"identifier": {"system": SUB_SYSTEM, "value": entry.actor or "anonymous"}},
        "requestor": True,
    }
    if entry.roles:
        requestor["role"] = [
            {"coding": [{"system": ROLE_SYSTEM, "code": role}]} for role in entry.roles
        ]
    if entry.client_id and entry.client_id != entry.actor:
        requestor["altId"] = entry.client_id
    if entry.source_ip:
        requestor["network"] = {"address": entry.source_ip, "type": "2"}
    if purpose:
        requestor["purposeOfUse"] = purpose
    agents = [requestor]
    if entry.client_id:
        agents.append(
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                            "code": "application",
                            "display": "application",
                        }
                    ]
                },
                "who": {"identifier": {"system": CLIENT_SYSTEM, "value": entry.client_id}},
                "requestor": False,
            }
        )

    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{patient}"},
            "type": {"system": _ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"},
        }
        for patient in entry.patient_ids or []
    ]
    if entry.resource_type:
        target: dict[str, Any] = {
            "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": _OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        }
        if entry.resource_id:
            version = details.get("version")
            suffix = f"/_history/{version}" if isinstance(version, int) else ""
            target["what"] = {"reference": f"{entry.resource_type}/{entry.resource_id}{suffix}"}
        else:
            target["role"] = {"system": _OBJECT_ROLE, "code": "24", "display": "Query"}
            target["name"] = entry.resource_type
        shown = _details(details)
        if shown:
            target["detail"] = shown
        entities.append(target)

    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(entry.seq),
        "meta": {"lastUpdated": recorded},
        "type": _EVENT_TYPE,
        "subtype": [
            {"system": _INTERACTION_SYSTEM, "code": interaction, "display": interaction},
            {"system": ACTION_SYSTEM, "code": entry.action},
        ],
        "action": letter,
        "recorded": recorded,
        "outcome": _outcome(entry.outcome),
        "agent": agents,
        "source": {"observer": {"display": OBSERVER}, "type": [_SOURCE_TYPE]},
    }
    if entry.outcome != "success":
        reason = details.get("reason")
        event["outcomeDesc"] = reason if isinstance(reason, str) else entry.outcome
    if purpose:
        event["purposeOfEvent"] = purpose
    if entry.request_id:
        event["extension"] = [{"url": REQUEST_ID_EXTENSION, "valueString": entry.request_id}]
    if entities:
        event["entity"] = entities
    return event
