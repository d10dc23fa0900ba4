"""auth-service: ``create_app()`` and the ASGI entry ``medmesh.auth.main:app``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from medmesh.auth.audit_events.endpoints import router as audit_router
from medmesh.auth.authorize.apps import router as apps_router
from medmesh.auth.authorize.codes import AuthorizationCodes
from medmesh.auth.authorize.endpoints import router as authorize_router
from medmesh.auth.authorize.patients import PatientAccess
from medmesh.auth.authorize.service import SignInService
from medmesh.auth.authorize.sessions import BrowserSessions
from medmesh.auth.clients.assertions import ClientAssertionVerifier
from medmesh.auth.clients.endpoints import router as clients_router
from medmesh.auth.clients.jwks import ClientKeySource
from medmesh.auth.clients.service import ClientService
from medmesh.auth.components import AuthComponents, AuthState
from medmesh.auth.config import AuthSettings
from medmesh.auth.discovery.endpoints import router as discovery_router
from medmesh.auth.keys.endpoints import router as keys_router
from medmesh.auth.keys.service import KeyRingState, SigningKeyService
from medmesh.auth.launches.endpoints import router as launches_router
from medmesh.auth.launches.service import LaunchService
from medmesh.auth.logins.service import LoginThrottle, ThrottlePolicy
from medmesh.auth.metrics import AuthMetrics
from medmesh.auth.oidc.endpoints import router as oidc_router
from medmesh.auth.registration.endpoints import router as registration_router
from medmesh.auth.registration.service import RegistrationService
from medmesh.auth.roles.endpoints import router as roles_router
from medmesh.auth.roles.service import RoleService
from medmesh.auth.tokens.endpoints import router as tokens_router
from medmesh.auth.tokens.revocations import RevocationCache
from medmesh.auth.tokens.service import TokenService
from medmesh.auth.users.endpoints import router as users_router
from medmesh.auth.users.passwords import PasswordHasher
from medmesh.auth.users.service import UserService
from medmesh.platform.app import create_service_app
from medmesh.platform.background import running
from medmesh.platform.crypto import KeyRing
from medmesh.platform.db import Database
from medmesh.platform.errors import MedmeshError, render_oauth_error
from medmesh.platform.logging import get_logger
from medmesh.platform.tokens import TokenVerifier
from medmesh.platform.web import CrossOriginMiddleware, RateLimiter

VERSION = "0.1.0"
MAX_TOKEN_TTL_SECONDS = 86_400
KEY_RELOAD_SECONDS = 30.0
log = get_logger("medmesh.auth")
app: FastAPI  # built on first access, see __getattr__ below

DESCRIPTION = """The OAuth 2.0 / OpenID Connect token server every medmesh service trusts.

Access tokens are JWTs signed RS256 or ES256 (keys published at `/.well-known/jwks.json`) or HS256 with a
shared secret. Grants: `client_credentials`, `password` (per client) and `refresh_token` (rotated,
reuse revokes the family). Introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414).
"""


def load_kek(settings: AuthSettings) -> KeyRing:
    """The keys that encrypt signing keys at rest: from settings, or a local file in development."""
    if settings.key_encryption_keys:
        return KeyRing.parse(settings.key_encryption_keys)
    if settings.environment == "production":
        raise RuntimeError("MEDMESH_AUTH_KEY_ENCRYPTION_KEYS must be set in production")
    path = Path(settings.var_dir) / "auth-kek.key"
    if path.exists():
        return KeyRing.parse(path.read_text().strip())
    ring = KeyRing.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(ring.to_setting())
    return ring


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    """Build the auth-service app."""
    settings = settings or AuthSettings()
    database = Database(settings.effective_database_url, pool_size=settings.database_pool_size)
    keys = SigningKeyService(
        load_kek(settings),
        MAX_TOKEN_TTL_SECONDS,
        settings.jwt_hs256_secret,
        alg=settings.signing_alg,
    )
    revocations = RevocationCache(database, settings.revocation_sync_seconds)
    token_limiter = RateLimiter(
        settings.token_rate_limit_per_minute,
        60,
        redis_url=settings.redis_url,
        prefix="medmesh:auth:token",
    )

    @contextlib.asynccontextmanager
    async def auth_lifespan(app: FastAPI) -> AsyncIterator[None]:
        components = AuthState.of(app).auth
        async with database.write_lock, database.unit_of_work() as session:
            await components.roles.ensure_builtin(session)
            await keys.load(session)
        await revocations.sync()
        try:
            async with running(_housekeeping(components, settings), "auth-housekeeping"):
                yield
        finally:
            await token_limiter.aclose()

    routers = [
        tokens_router,
        authorize_router,
        apps_router,
        oidc_router,
        registration_router,
        launches_router,
        discovery_router,
        users_router,
        clients_router,
        roles_router,
        keys_router,
        audit_router,
    ]
    metrics_box: list[AuthMetrics] = []

    def oauth_errors(request: Request, error: MedmeshError) -> Response:
        if metrics_box:
            metrics_box[0].rejected.labels(error.code).inc()
        return render_oauth_error(request, error)

    app = create_service_app(
        settings,
        title="medmesh auth-service",
        version=VERSION,
        description=DESCRIPTION,
        routers=routers,
        error_renderers=[("/oauth", oauth_errors)],
        lifespans=[auth_lifespan],
        verify_tokens=False,
        database=database,
        state=AuthState,
    )
    app.add_middleware(CrossOriginMiddleware, origins=settings.cors_origins, paths=["/oauth/token"])
    state = AuthState.of(app)
    auth_metrics = AuthMetrics.register(state.metrics)
    metrics_box.append(auth_metrics)
    auth_metrics.key_age.set_function(keys.active_key_age_seconds)
    auth_metrics.key_rotation_after.set(settings.key_rotation_days * 86400)

    # The auth-service verifies its own tokens (admin API, userinfo) with its own key ring.
    verifier = TokenVerifier(
        settings.issuer,
        settings.audience,
        jwks={"keys": []},
        hs256_secret=settings.jwt_hs256_secret,
        revocations=revocations,
    )

    def follow_ring(state: KeyRingState) -> None:
        verifier.set_jwks(state.jwks)

    keys.listeners.append(follow_ring)
    state.verifier = verifier

    hasher = PasswordHasher(
        settings.argon2_memory_kib,
        settings.argon2_time_cost,
        settings.argon2_parallelism,
        settings.max_concurrent_hashes,
    )
    roles = RoleService()
    users = UserService(hasher, roles)
    throttle = LoginThrottle(
        database,
        ThrottlePolicy(
            delay_after=settings.login_delay_after_failures,
            lockout_after=settings.login_lockout_after_failures,
            lockout_seconds=settings.login_lockout_seconds,
            max_delay_seconds=settings.login_max_delay_seconds,
            ip_lockout_after=settings.ip_lockout_after_failures,
        ),
    )
    tokens = TokenService(
        settings, database, keys, users, roles, throttle, revocations, state.audit, auth_metrics
    )
    clients = ClientService(settings.client_cache_seconds)
    assertions = ClientAssertionVerifier(
        clients,
        ClientKeySource(settings.client_jwks_cache_seconds),
        database,
        state.audit,
        settings.issuer.rstrip("/") + "/oauth/token",
    )
    state.auth = AuthComponents(
        keys=keys,
        clients=clients,
        assertions=assertions,
        registration=RegistrationService(clients, settings.registration_scopes),
        users=users,
        roles=roles,
        throttle=throttle,
        revocations=revocations,
        tokens=tokens,
        audit=state.audit,
        token_limiter=token_limiter,
        codes=AuthorizationCodes(tokens, settings.authorization_code_ttl_seconds),
        browser_sessions=BrowserSessions(settings.browser_session_ttl_seconds),
        sign_in=SignInService(tokens),
        patients=PatientAccess(tokens, settings.fhir_base_urls[0]),
        launches=LaunchService(database, settings.launch_ttl_seconds),
    )
    return app


async def _housekeeping(components: AuthComponents, settings: AuthSettings) -> None:
    """Reload keys rotated by other replicas; delete expired refresh tokens and revocations."""
    database = components.tokens.database
    since_cleanup = settings.cleanup_interval_seconds
    while True:
        await asyncio.sleep(KEY_RELOAD_SECONDS)
        try:
            async with database.sessionmaker() as session:
                await components.keys.load(session, create_if_missing=False)
            since_cleanup += KEY_RELOAD_SECONDS
            if since_cleanup >= settings.cleanup_interval_seconds:
                since_cleanup = 0
                refresh, revoked = await components.tokens.revoker.cleanup()
                stale = await components.throttle.forget_stale()
                sign_ins = await components.codes.forget_expired()
                jtis = await components.assertions.forget_expired()
                launches = await components.launches.forget_expired()
                log.info(
                    "cleanup_done",
                    refresh_tokens=refresh,
                    revocations=revoked,
                    login_counters=stale,
                    codes_and_sign_in_sessions=sign_ins,
                    assertion_jtis=jtis,
                    launches=launches,
                )
        except Exception as exc:
            log.warning("housekeeping_failed", error_type=type(exc).__name__)


def __getattr__(name: str) -> FastAPI:
    # ``medmesh.auth.main:app`` builds the app on first use, so importing the module stays cheap.
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
