"""FHIR R4 (4.0.1) validation from HL7's own definitions (vendored under ``data/``).

``validate(resource)`` answers every :class:`Issue` of a resource: the R4 JSON Schema compiled
with jsonschema-rs, then what the schema cannot say (:mod:`.rules`), from R4's
StructureDefinitions and value sets.
"""

from medmesh.phi.fhir.r4.definitions import Definitions, definitions
from medmesh.phi.fhir.r4.outcome import Issue, operation_outcome
from medmesh.phi.fhir.r4.validator import Validator, shared_validator, validate

__all__ = [
    "Definitions",
    "Issue",
    "Validator",
    "definitions",
    "operation_outcome",
    "shared_validator",
    "validate",
]
