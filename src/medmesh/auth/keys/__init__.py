"""auth-service: keys."""
