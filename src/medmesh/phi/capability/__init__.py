"""phi-service: capability."""
