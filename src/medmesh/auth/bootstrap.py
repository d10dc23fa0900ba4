"""First-run bootstrap: the admin user and the demo clients (`medmesh up`, `medmesh admin bootstrap`).

Idempotent: what exists is left alone (its secret is not shown again). Passwords
and secrets are generated unless given, and returned so the caller can show
them once; they are never logged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from medmesh.auth.clients.schemas import ClientCreate
from medmesh.auth.clients.service import ClientService
from medmesh.auth.models import Client
from medmesh.auth.roles.defaults import BUILTIN_ROLES
from medmesh.auth.roles.service import RoleService
from medmesh.auth.users.passwords import PasswordHasher
from medmesh.auth.users.repository import UserRepository
from medmesh.auth.users.schemas import UserCreate
from medmesh.auth.users.service import UserService, normalize_username
from medmesh.platform.db import Database

CLI_CLIENT_ID = "medmesh-cli"
DEMO_SERVICE_CLIENT_ID = "demo-service"
SERVICE_CLIENTS = ("svc-synthetic", "svc-devices", "svc-payments")
#: A first-party app signs in users of every role, so its client allows every role's scopes
#: (each user's token is still limited to what their own roles grant).
FIRST_PARTY_SCOPE = " ".join(
    sorted({s for _, scope in BUILTIN_ROLES.values() for s in scope.split()})
)


@dataclass
class BootstrapResult:
    """What was created now (secrets and passwords only for what is new)."""

    admin_username: str
    admin_password: str | None = None
    clients: dict[str, str] = field(default_factory=dict)


async def bootstrap(
    database: Database,
    *,
    admin_username: str = "admin",
    admin_password: str = "",
    hasher: PasswordHasher | None = None,
) -> BootstrapResult:
    roles = RoleService()
    users = UserService(hasher or PasswordHasher(), roles)
    clients = ClientService(cache_seconds=0)
    result = BootstrapResult(admin_username=normalize_username(admin_username))
    async with database.write_lock, database.unit_of_work() as session:
        await roles.ensure_builtin(session)
        if await UserRepository(session).by_username(result.admin_username) is None:
            password = admin_password or secrets.token_urlsafe(18)
            await users.create(
                session, UserCreate(username=admin_username, password=password, roles=["admin"])
            )
            result.admin_password = password
        wanted = {
            CLI_CLIENT_ID: ClientCreate(
                client_id=CLI_CLIENT_ID,
                name="medmesh CLI and first-party apps",
                grant_types=["password", "refresh_token", "client_credentials"],
                scope=FIRST_PARTY_SCOPE,
                roles=["admin"],
            ),
            DEMO_SERVICE_CLIENT_ID: ClientCreate(
                client_id=DEMO_SERVICE_CLIENT_ID,
                name="demo backend service",
                grant_types=["client_credentials"],
                scope=BUILTIN_ROLES["service"][1],
                roles=["service"],
            ),
        }
        for client_id in SERVICE_CLIENTS:
            wanted[client_id] = ClientCreate(
                client_id=client_id,
                name=f"medmesh {client_id.removeprefix('svc-')} service",
                grant_types=["client_credentials"],
                scope=BUILTIN_ROLES["service"][1],
                roles=["service"],
            )
        for client_id, data in wanted.items():
            if await session.get(Client, client_id) is None:
                _, secret = await clients.create(session, data)
                if secret is not None:
                    result.clients[client_id] = secret
    return result
