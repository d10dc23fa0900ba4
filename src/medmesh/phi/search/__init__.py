"""phi-service: search."""
