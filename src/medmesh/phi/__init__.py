"""phi-service: a FHIR R4 store for Protected Health Information."""
