"""phi-service: resources."""
