"""auth-service: logins."""
