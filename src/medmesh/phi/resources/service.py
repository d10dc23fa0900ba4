"""Create, read, update, delete, vread and ``$validate`` of FHIR resources: one service.

Each concept has its module: storage primitives and the policy check
(:mod:`~medmesh.phi.resources.storage`), reads (:mod:`~medmesh.phi.resources.reads`), writes
(:mod:`~medmesh.phi.resources.writes`) and ``$validate``
(:mod:`~medmesh.phi.resources.validation`).
"""

from __future__ import annotations

from medmesh.phi.resources.storage import ConditionalMatch, ResourceStore
from medmesh.phi.resources.validation import ResourceValidation
from medmesh.phi.resources.writes import ResourceWrites

__all__ = ["ConditionalMatch", "ResourceService", "ResourceStore"]


class ResourceService(ResourceWrites, ResourceValidation):
    """The resource interactions of phi (its endpoints, Bundles, search and history use it)."""
