"""phi's SMART configuration says what the auth-service's says, and its CapabilityStatement's
oauth-uris name the same endpoints."""

from __future__ import annotations

from typing import Any

from medmesh.auth.oidc.smart import smart_configuration as auth_configuration
from medmesh.phi.capability.smart import smart_configuration
from medmesh.phi.capability.statement import security


def test_phi_and_auth_publish_the_same_document() -> None:
    issuer = "https://auth.example"
    ours = smart_configuration(issuer, f"{issuer}/.well-known/jwks.json")
    theirs: dict[str, Any] = auth_configuration(issuer, "ES256")
    # The ID token's algorithm is the auth key ring's to say.
    assert theirs.pop("id_token_signing_alg_values_supported") == ["ES256"]
    assert ours == theirs


def test_the_oauth_uris_are_the_documents_endpoints() -> None:
    issuer = "https://auth.example"
    document = smart_configuration(issuer, f"{issuer}/.well-known/jwks.json")
    [extension] = security(issuer)["extension"]
    uris = {item["url"]: item["valueUri"] for item in extension["extension"]}
    assert uris == {
        "authorize": document["authorization_endpoint"],
        "token": document["token_endpoint"],
        "revoke": document["revocation_endpoint"],
        "introspect": document["introspection_endpoint"],
        "register": document["registration_endpoint"],
        "manage": document["management_endpoint"],
    }
