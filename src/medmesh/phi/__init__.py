"""phi-service: a FHIR R4 store for Protected Health Information.

The modules of :data:`NATIVE_MODULES` (validation, index rows, references, compartments, JSON
text, a Bundle's entries: pure computation on every resource stored) are imported compiled with
mypyc when a current build of them exists (:mod:`medmesh.platform.native`, decision 0049)."""

from medmesh.platform import native

NATIVE_GROUP = "medmesh_phi_native"
NATIVE_MODULES = (
    "medmesh.phi.bundles.references",
    "medmesh.phi.bundles.requests",
    "medmesh.phi.fhir.compartment",
    "medmesh.phi.fhir.jsontext",
    "medmesh.phi.fhir.r4.bindings",
    "medmesh.phi.fhir.r4.outcome",
    "medmesh.phi.fhir.r4.references",
    "medmesh.phi.fhir.r4.rules",
    "medmesh.phi.fhir.references",
    "medmesh.phi.fhir.validation",
    "medmesh.phi.search.dates",
    "medmesh.phi.search.extract",
)
native.install(NATIVE_GROUP, NATIVE_MODULES)
