"""auth-service: roles."""
