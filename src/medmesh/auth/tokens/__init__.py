"""auth-service: tokens."""
