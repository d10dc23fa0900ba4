"""phi-service: access."""
