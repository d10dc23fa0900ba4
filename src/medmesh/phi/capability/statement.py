"""The CapabilityStatement, built from what the app really serves.

Interactions are read off the app's routes (its OpenAPI document) (a route that is not mounted is not
advertised), search parameters off :data:`SEARCH_PARAMETERS`, security off the
settings. So the statement cannot claim what is not built: when the search or bundle
routes are absent, neither ``search-type`` nor ``transaction`` is listed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from medmesh.phi.fhir.types import SUPPORTED_TYPES

SMART_SERVICE = {
    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
    "code": "SMART-on-FHIR",
    "display": "SMART-on-FHIR",
}
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
#: The Bulk Data import proposal (no OperationDefinition of it is published yet).
IMPORT = "https://github.com/smart-on-fhir/bulk-import/blob/master/import.md"
_PARAM = re.compile(r"\{[^}]*\}")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

#: (method, path with ``{}`` for each path parameter) -> type-level interaction.
TYPE_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/fhir/{}/{}"): "read",
    ("GET", "/fhir/{}/{}/_history/{}"): "vread",
    ("PUT", "/fhir/{}/{}"): "update",
    ("DELETE", "/fhir/{}/{}"): "delete",
    ("POST", "/fhir/{}"): "create",
    ("GET", "/fhir/{}"): "search-type",
    ("GET", "/fhir/{}/{}/_history"): "history-instance",
    ("GET", "/fhir/{}/_history"): "history-type",
}
#: Interactions in the order the specification lists them.
_ORDER = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
AUDIT_EVENT_PARAMS = (
    ("patient", "reference", "A patient the record names (Patient/<id> or <id>)"),
    ("agent", "token", "Who made the request (the token's sub)"),
    ("date", "date", "When the record was made (eq, ge, gt, le, lt)"),
    ("action", "token", "C, R, U, D or E"),
    (
        "subtype",
        "token",
        "The interaction (read, vread, search-type ...) or our action name (fhir.read ...)",
    ),
)


def served_routes(openapi: dict[str, Any]) -> set[tuple[str, str]]:
    """``(METHOD, normalised path)`` of every operation in the app's OpenAPI document."""
    found: set[tuple[str, str]] = set()
    for path, operations in (openapi.get("paths") or {}).items():
        normalised = _PARAM.sub("{}", path)
        found.update(
            (method.upper(), normalised) for method in operations if method.upper() in _METHODS
        )
    return found


def _search_params(resource_type: str) -> list[dict[str, Any]]:
    # Imported when the statement is built: search's definitions are another part's module.
    from medmesh.phi.search import definitions

    return [
        {"name": name, "type": definition.type, "documentation": definition.documentation}
        for name, definition in sorted(definitions.parameters_of(resource_type).items())
    ]


def _includes(resource_type: str) -> tuple[list[str], list[str]]:
    """``Type:param`` for the reference parameters of this type, and of others that may point here."""
    from medmesh.phi.search import definitions

    reference = definitions.REFERENCE
    include = sorted(
        f"{resource_type}:{name}"
        for name, d in definitions.parameters_of(resource_type).items()
        if d.type == reference
    )
    revinclude = sorted(
        f"{other}:{name}"
        for other, params in definitions.SEARCH_PARAMETERS.items()
        for name, d in params.items()
        if d.type == reference and (not d.target or resource_type in d.target)
    )
    return include, revinclude


def _resource(
    resource_type: str, interactions: list[str], routes: set[tuple[str, str]]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": "vread" in interactions,
        "updateCreate": "update" in interactions,
        "conditionalCreate": "create" in interactions,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
    }
    if "search-type" in interactions:
        include, revinclude = _includes(resource_type)
        if include:  # R4 JSON has no empty arrays
            entry["searchInclude"] = include
        if revinclude:
            entry["searchRevInclude"] = revinclude
        entry["searchParam"] = _search_params(resource_type)
    operations = []
    if resource_type == "Patient" and any("$everything" in path for _, path in routes):
        operations.append({"name": "everything", "definition": EVERYTHING})
    if ("POST", "/fhir/{}/$validate") in routes:
        operations.append({"name": "validate", "definition": VALIDATE})
    if operations:
        entry["operation"] = operations
    return entry


def _audit_event_resource(routes: set[tuple[str, str]]) -> dict[str, Any] | None:
    interactions = [
        code
        for code, path in (("read", "/fhir/AuditEvent/{}"), ("search-type", "/fhir/AuditEvent"))
        if ("GET", path) in routes
    ]
    if not interactions:
        return None
    return {
        "type": "AuditEvent",
        "documentation": "The phi-service audit trail (read-only; needs the scope audit:read)",
        "interaction": [{"code": code} for code in interactions],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "searchParam": [
            {"name": n, "type": t, "documentation": doc} for n, t, doc in AUDIT_EVENT_PARAMS
        ],
    }


def security(issuer: str) -> dict[str, Any]:
    """SMART-on-FHIR security: the service and the auth-service's OAuth endpoints."""
    base = issuer.rstrip("/")
    return {
        "cors": False,
        "service": [
            {"coding": [SMART_SERVICE], "text": "OAuth2 bearer tokens with SMART v2 scopes"}
        ],
        "description": "Bearer access tokens from the medmesh auth-service (audience medmesh-phi); "
        "SMART v2 patient/, user/ and system/ scopes (v1 .read/.write accepted) with ?category= limits; "
        "break-glass with X-Break-Glass-Reason for clinicians.",
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "authorize", "valueUri": f"{base}/oauth/authorize"},
                    {"url": "token", "valueUri": f"{base}/oauth/token"},
                    {"url": "revoke", "valueUri": f"{base}/oauth/revoke"},
                    {"url": "introspect", "valueUri": f"{base}/oauth/introspect"},
                    {"url": "register", "valueUri": f"{base}/oauth/register"},
                    {"url": "manage", "valueUri": f"{base}/oauth/apps"},
                ],
            }
        ],
    }


def capability_statement(
    routes: set[tuple[str, str]],
    *,
    base_url: str,
    issuer: str,
    version: str,
    published: datetime | None = None,
) -> dict[str, Any]:
    """The CapabilityStatement of a phi-service serving ``routes``."""
    type_interactions = [code for code in _ORDER if any(TYPE_ROUTES.get(r) == code for r in routes)]
    resources = [_resource(t, type_interactions, routes) for t in sorted(SUPPORTED_TYPES)]
    audit = _audit_event_resource(routes)
    if audit is not None:
        resources.append(audit)
        resources.sort(key=lambda r: str(r["type"]))
    system: list[dict[str, str]] = []
    if ("POST", "/fhir") in routes:
        system += [{"code": "transaction"}, {"code": "batch"}]
    if ("GET", "/fhir/_history") in routes:
        system.append({"code": "history-system"})
    if ("GET", "/fhir") in routes:
        system.append({"code": "search-system"})
    operations = []
    if ("POST", "/fhir/$import") in routes:
        operations.append(
            {
                "name": "import",
                "definition": IMPORT,
                "documentation": "NDJSON from listed URLs loaded as a job "
                "(GET /fhir/$import-poll-status/{id})",
            }
        )
    moment = (published or datetime.now(UTC)).astimezone(UTC)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "publisher": "medmesh",
        "kind": "instance",
        "software": {"name": "medmesh", "version": version},
        "implementation": {"description": "medmesh phi-service", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Resources are encrypted at rest; every access is audited (see AuditEvent).",
                "security": security(issuer),
                "resource": resources,
                "interaction": system,
                **({"operation": operations} if operations else {}),
            }
        ],
    }
