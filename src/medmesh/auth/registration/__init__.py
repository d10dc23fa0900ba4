"""auth-service: dynamic client registration (RFC 7591)."""
