"""OAuth clients: registration, secrets (random, stored hashed) and authentication.

Client secrets are 256-bit random strings, so a single SHA-256 is a sound
hash for them (a slow password hash protects guessable secrets, which these are
not) and keeps client authentication cheap on the token path. Authenticated
client records are cached in memory for a few seconds; admin changes made
through this process drop the cache entry at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.clients.repository import ClientRepository
from medmesh.auth.clients.schemas import PRIVATE_KEY_JWT, ClientCreate, ClientUpdate
from medmesh.auth.config import ALL_AUDIENCES
from medmesh.auth.models import Client
from medmesh.auth.oauth import InvalidClient
from medmesh.platform.db import SessionSource
from medmesh.platform.errors import Conflict, NotFound
from medmesh.platform.tokens import ScopeSet

SECRET_PREFIX = "mmcs_"


def new_client_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ClientView:
    """What the token path needs of a client (immutable, cacheable)."""

    client_id: str
    secret_hash: str
    grant_types: frozenset[str]
    scopes: ScopeSet
    scope: str
    roles: tuple[str, ...]
    audiences: tuple[str, ...]
    access_token_ttl_seconds: int | None
    disabled: bool
    token_endpoint_auth_method: str = "client_secret_basic"
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    public: bool = False
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    name: str = ""

    @classmethod
    def of(cls, client: Client) -> ClientView:
        return cls(
            client_id=client.client_id,
            secret_hash=client.secret_hash,
            grant_types=frozenset(client.grant_types),
            scopes=ScopeSet(client.scopes),
            scope=client.scopes,
            roles=tuple(client.roles),
            audiences=tuple(client.audiences) or ALL_AUDIENCES,
            access_token_ttl_seconds=client.access_token_ttl_seconds,
            disabled=client.disabled,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            jwks=client.jwks,
            jwks_uri=client.jwks_uri,
            public=client.public,
            redirect_uris=tuple(client.redirect_uris),
            post_logout_redirect_uris=tuple(client.post_logout_redirect_uris),
            name=client.name,
        )


class ClientService:
    """Registers clients and authenticates them."""

    def __init__(self, cache_seconds: float = 5.0) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ClientView]] = {}

    def forget(self, client_id: str) -> None:
        self._cache.pop(client_id, None)

    async def _view(self, session: SessionSource, client_id: str) -> ClientView | None:
        now = time.monotonic()
        cached = self._cache.get(client_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        client = await ClientRepository(session()).get(client_id)
        if client is None:
            return None
        view = ClientView.of(client)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[client_id] = (now, view)
        return view

    async def lookup(self, session: SessionSource, client_id: str) -> ClientView | None:
        """The client (cached for a few seconds), or None; it is not authenticated yet."""
        return await self._view(session, client_id)

    async def authenticate(self, session: SessionSource, client_id: str, secret: str) -> ClientView:
        """The client when ``secret`` is its current secret; else ``invalid_client`` (401).

        Clients are remembered for a few seconds, so ``session`` is opened only on a miss."""
        view = await self._view(session, client_id)
        expected = view.secret_hash if view is not None else hash_client_secret("")
        ok = hmac.compare_digest(hash_client_secret(secret), expected)
        if view is None or not ok or view.disabled:
            raise InvalidClient()
        return view

    async def identify_public(self, session: SessionSource, client_id: str) -> ClientView:
        """A public client named by ``client_id`` alone (it has no secret); else
        ``invalid_client``."""
        view = await self._view(session, client_id)
        if view is None or not view.public or view.disabled:
            raise InvalidClient()
        return view

    async def find(self, session: SessionSource, client_id: str) -> ClientView | None:
        """The enabled client ``client_id`` names, unauthenticated (the authorization endpoint)."""
        view = await self._view(session, client_id)
        return None if view is None or view.disabled else view

    async def create(self, session: AsyncSession, data: ClientCreate) -> tuple[Client, str | None]:
        """Register a client; returns it with its secret (shown once, stored hashed), or None for
        a ``private_key_jwt`` client (its secret hash stays empty, which no secret matches)."""
        ScopeSet(data.scope)  # refuse malformed SMART scopes at registration
        repo = ClientRepository(session)
        client_id = data.client_id or "mm_" + secrets.token_hex(8)
        if await repo.get(client_id) is not None:
            raise Conflict("a client with this client_id exists", code="client_exists")
        asymmetric = data.token_endpoint_auth_method == PRIVATE_KEY_JWT
        secret = None if asymmetric or data.public else new_client_secret()
        client = Client(
            client_id=client_id,
            secret_hash="" if secret is None else hash_client_secret(secret),
            token_endpoint_auth_method=data.token_endpoint_auth_method,
            jwks=data.jwks,
            jwks_uri=data.jwks_uri,
            name=data.name,
            grant_types=list(data.grant_types),
            scopes=data.scope,
            roles=list(data.roles),
            audiences=list(data.audiences),
            access_token_ttl_seconds=data.access_token_ttl_seconds,
            public=data.public,
            redirect_uris=list(data.redirect_uris),
            post_logout_redirect_uris=list(data.post_logout_redirect_uris),
        )
        await repo.add(client)
        return client, secret

    async def get(self, session: AsyncSession, client_id: str) -> Client:
        client = await ClientRepository(session).get(client_id)
        if client is None:
            raise NotFound("no such client", code="client_not_found")
        return client

    async def page(self, session: AsyncSession, after: str | None, limit: int) -> list[Client]:
        return list(await ClientRepository(session).page(after=after, limit=limit))

    async def update(self, session: AsyncSession, client_id: str, data: ClientUpdate) -> Client:
        client = await self.get(session, client_id)
        changes = data.model_dump(exclude_unset=True)
        if "scope" in changes:
            ScopeSet(changes["scope"])
            client.scopes = changes.pop("scope")
        if "jwks" in changes or "jwks_uri" in changes:
            if client.token_endpoint_auth_method != PRIVATE_KEY_JWT:
                raise Conflict(
                    "only a private_key_jwt client has a JWK Set", code="not_private_key_jwt"
                )
            client.jwks = changes.pop("jwks", None)
            client.jwks_uri = changes.pop("jwks_uri", None)
        for name, value in changes.items():
            setattr(client, name, value)
        await session.flush()
        self.forget(client_id)
        return client

    async def rotate_secret(self, session: AsyncSession, client_id: str) -> tuple[Client, str]:
        client = await self.get(session, client_id)
        if client.token_endpoint_auth_method == PRIVATE_KEY_JWT:
            raise Conflict("this client authenticates with private_key_jwt", code="no_secret")
        secret = new_client_secret()
        client.secret_hash = hash_client_secret(secret)
        await session.flush()
        self.forget(client_id)
        return client, secret

    async def delete(self, session: AsyncSession, client_id: str) -> None:
        client = await self.get(session, client_id)
        await ClientRepository(session).delete(client)
        self.forget(client_id)
