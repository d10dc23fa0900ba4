"""phi-service: audit_events."""
