"""auth-service: discovery."""
