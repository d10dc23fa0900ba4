"""auth-service: users."""
