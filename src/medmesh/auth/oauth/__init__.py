"""OAuth 2.0 errors (RFC 6749 section 5.2) shared by the token server's domains."""

from __future__ import annotations

from medmesh.platform.errors import MedmeshError


class OAuthError(MedmeshError):
    """An RFC 6749 error; rendered as ``{"error", "error_description"}`` under ``/oauth``."""

    status, code = 400, "invalid_request"


class InvalidRequest(OAuthError):
    status, code = 400, "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed: 401 with a ``WWW-Authenticate`` challenge."""

    status, code = 401, "invalid_client"

    def __init__(self, message: str = "client authentication failed") -> None:
        super().__init__(
            message, headers={"WWW-Authenticate": 'Basic realm="medmesh", charset="UTF-8"'}
        )


class InvalidGrant(OAuthError):
    status, code = 400, "invalid_grant"


class UnauthorizedClient(OAuthError):
    status, code = 400, "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    status, code = 400, "unsupported_grant_type"


class UnsupportedTokenType(OAuthError):
    status, code = 400, "unsupported_token_type"


class InvalidScopeRequested(OAuthError):
    status, code = 400, "invalid_scope"


class SlowDown(OAuthError):
    """Too many requests from this source (429 with ``Retry-After``)."""

    status, code = 429, "slow_down"
