"""The request context every phi-service operation receives."""

from __future__ import annotations

from dataclasses import dataclass

from medmesh.phi.access.policy import AccessPolicy
from medmesh.platform.auth import Principal


@dataclass
class FhirContext:
    principal: Principal
    policy: AccessPolicy
    ip: str
    request_id: str | None
    base_url: str
