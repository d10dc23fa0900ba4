"""auth-service: the OAuth 2.0 / OIDC token server every medmesh service trusts."""
