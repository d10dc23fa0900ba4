"""auth-service: clients."""
