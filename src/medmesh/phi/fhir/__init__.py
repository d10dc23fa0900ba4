"""phi-service: fhir."""
