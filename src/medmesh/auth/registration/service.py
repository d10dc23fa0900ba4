"""Dynamic client registration (RFC 7591) behind an initial access token.

The initial access token is an access token of this server carrying the scope
:data:`REGISTRATION_SCOPE`, which an admin grants (to a developer portal's client, or
through a role to a person). A registered client gets no roles, and only scopes from the
``registration_scopes`` setting: registration cannot reach beyond what the operator opened.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.clients.jwks import LOOPBACK_HOSTS
from medmesh.auth.clients.schemas import ClientCreate
from medmesh.auth.clients.service import ClientService
from medmesh.auth.models import Client
from medmesh.auth.registration.schemas import (
    InvalidClientMetadata,
    InvalidRedirectUri,
    RegistrationRequest,
)
from medmesh.platform.tokens import InvalidScope, ScopeSet, narrow

REGISTRATION_SCOPE: Final = "auth:register"
AUTH_METHODS: Final = frozenset(
    {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
)
#: Grants a registered client may use; the password grant needs an admin.
GRANTS: Final = frozenset({"authorization_code", "refresh_token", "client_credentials"})


def check_redirect_uri(uri: str) -> str:
    """``uri`` when it is an absolute ``https`` URI (``http`` on a loopback host) without a
    fragment; else :class:`InvalidRedirectUri`."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise InvalidRedirectUri(f"redirect URI {uri[:200]!r} is not an absolute https URI")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise InvalidRedirectUri(f"redirect URI {uri[:200]!r} must use https (http on localhost)")
    return uri


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


class RegistrationService:
    """Checks RFC 7591 metadata and registers the client through :class:`ClientService`."""

    def __init__(self, clients: ClientService, allowed_scopes: str) -> None:
        self.clients = clients
        self.allowed = ScopeSet(allowed_scopes)

    def parse(self, metadata: dict[str, Any]) -> RegistrationRequest:
        try:
            return RegistrationRequest.model_validate(metadata)
        except ValidationError as exc:
            raise InvalidClientMetadata(_first_error(exc)) from None

    def _scope(self, requested: str | None) -> str:
        try:
            return narrow(requested or "", self.allowed)
        except InvalidScope as exc:
            raise InvalidClientMetadata(exc.message) from None

    def client_create(self, request: RegistrationRequest) -> ClientCreate:
        """The admin-API registration the metadata amounts to, or an RFC 7591 error."""
        method = request.token_endpoint_auth_method
        if method not in AUTH_METHODS:
            raise InvalidClientMetadata(f"token_endpoint_auth_method {method[:40]!r} is unknown")
        grants = list(dict.fromkeys(request.grant_types))
        unknown = [g for g in grants if g not in GRANTS]
        if not grants or unknown:
            raise InvalidClientMetadata(
                "grant_types may hold authorization_code, refresh_token and client_credentials"
            )
        redirect_uris = [check_redirect_uri(uri) for uri in request.redirect_uris]
        if "authorization_code" in grants:
            if not redirect_uris:
                raise InvalidRedirectUri("authorization_code needs at least one redirect URI")
            if request.response_types != ["code"]:
                raise InvalidClientMetadata('response_types must be ["code"]')
        public = method == "none"
        if public and ("client_credentials" in grants or "authorization_code" not in grants):
            raise InvalidClientMetadata("a public client (none) may use authorization_code only")
        fields: dict[str, Any] = {
            "name": request.client_name,
            "grant_types": grants,
            "scope": self._scope(request.scope),
            "token_endpoint_auth_method": "client_secret_basic" if public else method,
            "jwks": request.jwks,
            "jwks_uri": request.jwks_uri,
            "redirect_uris": redirect_uris,
            "public": public,
        }
        try:
            return ClientCreate.model_validate(fields)
        except ValidationError as exc:
            raise InvalidClientMetadata(_first_error(exc)) from None

    async def register(
        self, session: AsyncSession, metadata: dict[str, Any]
    ) -> tuple[Client, str | None, RegistrationRequest]:
        """Register the client ``metadata`` describes; its secret (None for private_key_jwt and
        public clients) is shown once."""
        request = self.parse(metadata)
        client, secret = await self.clients.create(session, self.client_create(request))
        if request.token_endpoint_auth_method == "none":
            secret = None
        return client, secret, request
