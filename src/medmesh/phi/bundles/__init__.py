"""phi-service: bundles."""
