"""OpenID Connect beyond the token: RP-initiated logout and SMART's configuration document."""
