"""``/fhir/metadata`` tells the truth, and ``smart-configuration`` points at the auth-service."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from medmesh.phi.capability.statement import VALIDATE, capability_statement, served_routes
from medmesh.phi.fhir.types import SUPPORTED_TYPES
from medmesh.phi.search.definitions import parameters_of
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import patient


async def _statement(phi: PhiHarness) -> dict[str, Any]:
    response = await phi.http.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    return body


async def test_metadata_is_public_and_valid(phi: PhiHarness) -> None:
    statement = await _statement(phi)
    CapabilityStatement.model_validate(statement)
    assert statement["status"] == "active"
    assert statement["kind"] == "instance"
    assert statement["fhirVersion"] == "4.0.1"
    assert "json" in statement["format"]
    assert statement["software"]["name"] == "medmesh"
    assert statement["implementation"]["url"] == "http://phi.test/fhir"
    [rest] = statement["rest"]
    assert rest["mode"] == "server"
    assert {i["code"] for i in rest["interaction"]} >= {"transaction", "batch", "history-system"}


async def test_metadata_security_points_at_the_auth_service(phi: PhiHarness) -> None:
    security = (await _statement(phi))["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    [oauth] = security["extension"]
    uris = {e["url"]: e["valueUri"] for e in oauth["extension"]}
    assert uris == {
        "authorize": "http://auth.test/oauth/authorize",
        "token": "http://auth.test/oauth/token",
        "revoke": "http://auth.test/oauth/revoke",
        "introspect": "http://auth.test/oauth/introspect",
        "register": "http://auth.test/oauth/register",
        "manage": "http://auth.test/oauth/apps",
    }


async def test_every_supported_type_with_its_interactions_and_parameters(phi: PhiHarness) -> None:
    resources = {r["type"]: r for r in (await _statement(phi))["rest"][0]["resource"]}
    assert set(resources) == SUPPORTED_TYPES | {"AuditEvent"}
    observation = resources["Observation"]
    assert {i["code"] for i in observation["interaction"]} == {
        "read",
        "vread",
        "update",
        "delete",
        "create",
        "search-type",
        "history-instance",
        "history-type",
    }
    assert observation["versioning"] == "versioned-update"
    assert observation["conditionalCreate"] is True
    assert observation["conditionalUpdate"] is False
    assert observation["conditionalDelete"] == "not-supported"
    assert observation["updateCreate"] is True
    assert observation["readHistory"] is True
    names = {p["name"] for p in observation["searchParam"]}
    assert names == set(parameters_of("Observation"))
    assert {"patient", "code", "category", "date", "_id", "_lastUpdated"} <= names
    assert "Observation:subject" in observation["searchInclude"]
    assert "Observation:subject" in resources["Patient"]["searchRevInclude"]
    assert resources["Patient"]["operation"][0]["name"] == "everything"
    assert {op["name"] for r in resources.values() for op in r.get("operation", [])} == {
        "everything",
        "validate",
    }
    assert all(
        {"name": "validate", "definition": VALIDATE} in r["operation"]
        for name, r in resources.items()
        if name != "AuditEvent"
    )
    assert observation["operation"] == [{"name": "validate", "definition": VALIDATE}]
    audit = resources["AuditEvent"]
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}


def test_interactions_follow_the_mounted_routes() -> None:
    # Without search, bundle and history routes, none of them is claimed.
    routes = {("GET", "/fhir/{}/{}"), ("POST", "/fhir/{}")}
    statement = capability_statement(
        routes, base_url="http://x/fhir", issuer="http://auth", version="0"
    )
    CapabilityStatement.model_validate(statement)
    rest = statement["rest"][0]
    assert rest["interaction"] == []
    patient_entry = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert [i["code"] for i in patient_entry["interaction"]] == ["read", "create"]
    assert "searchParam" not in patient_entry
    assert "operation" not in patient_entry
    assert patient_entry["readHistory"] is False


async def test_metadata_lists_what_the_app_serves(phi: PhiHarness) -> None:
    routes = served_routes(phi.app.openapi())
    assert ("GET", "/fhir/{}/{}") in routes
    # And the interactions it claims really answer.
    created = await phi.create(patient())
    headers = phi.headers()
    assert (
        await phi.http.get(f"/fhir/Patient/{created['id']}/_history", headers=headers)
    ).status_code == 200
    assert (await phi.http.get("/fhir/Patient/_history", headers=headers)).status_code == 200
    assert (await phi.http.get("/fhir/_history", headers=headers)).status_code == 200
    assert (await phi.http.get("/fhir/Patient", headers=headers)).status_code == 200


async def test_smart_configuration(phi: PhiHarness) -> None:
    response = await phi.http.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    config = response.json()
    assert config["issuer"] == "http://auth.test"
    assert config["authorization_endpoint"] == "http://auth.test/oauth/authorize"
    assert config["token_endpoint"] == "http://auth.test/oauth/token"
    assert config["jwks_uri"] == "http://auth.test/.well-known/jwks.json"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-ehr", "launch-standalone", "permission-v2"} <= set(config["capabilities"])
    assert "system/*.cruds" in config["scopes_supported"]


async def test_advertised_includes_are_accepted(phi: PhiHarness) -> None:
    resources = {r["type"]: r for r in (await _statement(phi))["rest"][0]["resource"]}
    headers = phi.headers()
    for resource_type in ("Observation", "Patient", "Encounter"):
        entry = resources[resource_type]
        for name, values in (
            ("_include", entry["searchInclude"]),
            ("_revinclude", entry["searchRevInclude"]),
        ):
            for value in values:
                response = await phi.http.get(
                    f"/fhir/{resource_type}", params={name: value}, headers=headers
                )
                assert response.status_code == 200, (
                    resource_type,
                    name,
                    value,
                    response.text[:200],
                )
