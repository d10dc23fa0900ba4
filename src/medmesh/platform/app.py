"""The app factory every service uses.

:func:`create_service_app` wires, in this order from the outside in: tracing
(the instrumentation wraps the whole stack), request context (request id, log
context), RED metrics, security headers, the body-size limit, the last-resort
error responder (a 500 that logs the exception's type, never its message), then
the service's routers. It adds ``/healthz``, ``/readyz``, ``/metrics`` and the API docs
(``/docs``, ``/redoc``: :mod:`medmesh.platform.api_docs`), installs one error handler per
API style, and owns the lifespan:
database, audit trail, token verifier and the service's own workers start with
the app and stop, in reverse order, after in-flight requests have finished.
"""

from __future__ import annotations

import gc
import random
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medmesh.platform.api_docs import add_api_docs
from medmesh.platform.audit import (
    AuditTrail,
    audit_database_for,
    audit_sealing,
    ensure_audit_tables,
)
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import Database, SessionMiddleware
from medmesh.platform.errors import (
    BadRequest,
    ErrorRenderer,
    MedmeshError,
    render_problem,
)
from medmesh.platform.logging import configure_logging, get_logger, request_id_var
from medmesh.platform.metrics import CONTENT_TYPE_LATEST, MetricsMiddleware, ServiceMetrics
from medmesh.platform.state import PlatformState
from medmesh.platform.tokens import RevocationFeed, TokenVerifier, revocation_feed_for
from medmesh.platform.tracing import ServerTracingMiddleware, configure_tracing, instrument_engine
from medmesh.platform.web import (
    BodyLimitMiddleware,
    DirectRouteMiddleware,
    SecurityHeadersMiddleware,
    direct_routes,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
ReadinessCheck = Callable[[FastAPI], Awaitable[None]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = get_logger("medmesh.platform.app")


class RequestContextMiddleware:
    """Give every request an id (``X-Request-ID``, echoed back) and bind it to log lines."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or f"{random.getrandbits(128):032x}"  # an id, not a secret
        token = request_id_var.set(request_id)
        raw = request_id.encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            request_id_var.reset(token)


class UnexpectedErrorMiddleware:
    """Answer an unexpected exception with a 500 in the path's API style, logging only its type.

    Starlette's own last-resort handler re-raises the exception to the server, which then
    logs its message and traceback (and tracing records the message on the span); the
    message of an unexpected exception may carry data (SQL parameters, PHI), so it stops
    here. A :class:`MedmeshError` raised outside an endpoint (the body limit) is rendered.
    """

    def __init__(self, app: ASGIApp, respond: ErrorRenderer) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except MedmeshError as exc:
            if started:
                log.warning("error_after_response_started", code=exc.code, status=exc.status)
                return
            await self.respond(Request(scope, receive), exc)(scope, receive, send_wrapper)
        except DBAPIError as exc:
            if not _is_data_error(exc):
                _log_unexpected(exc, started)
                if not started:
                    await self.respond(Request(scope, receive), _INTERNAL)(
                        scope, receive, send_wrapper
                    )
                return
            # The database refused a value the API let through (a NUL character in a string on
            # PostgreSQL, a number out of range): the request is at fault, not the server.
            log.warning("data_refused_by_database", error_type=type(exc.orig).__name__)
            if not started:
                error = BadRequest(
                    "the request holds a value that cannot be stored (e.g. a NUL character)",
                    code="invalid_value",
                )
                await self.respond(Request(scope, receive), error)(scope, receive, send_wrapper)
        except Exception as exc:
            _log_unexpected(exc, started)
            if not started:
                await self.respond(Request(scope, receive), _INTERNAL)(scope, receive, send_wrapper)


_INTERNAL = MedmeshError("internal error", status=500, code="internal_error")


def _is_data_error(exc: DBAPIError) -> bool:
    """SQLSTATE class 22 (data exception) or the driver's DataError: a value the database refuses."""
    if isinstance(exc, DataError):
        return True
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
    return False


def _log_unexpected(exc: BaseException, started: bool) -> None:
    log.error(
        "unhandled_error",
        error_type=type(exc).__name__,
        frames=[
            f"{frame.filename}:{frame.lineno} in {frame.name}"
            for frame in traceback.extract_tb(exc.__traceback__)[-5:]
        ],
        response_started=started,
    )


class ErrorRenderers:
    """Picks the error format by path prefix (longest prefix wins)."""

    def __init__(self, renderers: Sequence[tuple[str, ErrorRenderer]]) -> None:
        self._renderers = sorted(renderers, key=lambda item: len(item[0]), reverse=True)

    def __call__(self, request: Request, error: MedmeshError) -> Response:
        path = request.url.path
        for prefix, renderer in self._renderers:
            if path.startswith(prefix):
                return renderer(request, error)
        return render_problem(request, error)


def _describe_validation(exc: RequestValidationError) -> str:
    # Name the fields and what is wrong, never echo the submitted values (they may be PHI).
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(
            str(p)
            for p in err.get("loc", ())
            if p not in ("body", "query", "path", "header", "form")
        )
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    version: str,
    description: str,
    routers: Sequence[APIRouter],
    error_renderers: Sequence[tuple[str, ErrorRenderer]] = (),
    lifespans: Sequence[Lifespan] = (),
    readiness_checks: Sequence[ReadinessCheck] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
    verify_tokens: bool = True,
    database: Database | None = None,
    state: type[PlatformState] = PlatformState,
) -> FastAPI:
    """Build a service's FastAPI app with the platform's middleware, routes and lifespan.

    ``state``: the class of ``app.state`` (a :class:`PlatformState`, or a service's subclass
    declaring its own typed attributes), read back with ``state.of(app)``."""
    service = settings.service_name
    configure_logging(service, settings.log_level, settings.log_file)
    configure_tracing(service, settings.otlp_endpoint, sample_ratio=settings.trace_sample_ratio)
    database = database or Database(
        settings.effective_database_url, pool_size=settings.database_pool_size
    )
    audit_database = audit_database_for(database)
    metrics = ServiceMetrics(service)
    audit = AuditTrail(
        audit_database,
        service,
        flush_interval_ms=settings.audit_flush_ms,
        records_counter=metrics.audit_records.labels(service),
        failures_counter=metrics.audit_failures.labels(service),
        batch_histogram=metrics.audit_batch.labels(service),
        sealing=audit_sealing(settings),
    )
    verifier = (
        TokenVerifier(
            settings.issuer,
            settings.audience,
            jwks_url=settings.effective_jwks_url,
            hs256_secret=settings.jwt_hs256_secret,
            refresh_min_seconds=settings.jwks_refresh_min_seconds,
            cache_seconds=settings.jwks_cache_seconds,
            revocations=revocation_feed_for(settings),
        )
        if verify_tokens
        else None
    )
    if verifier is not None:
        metrics.gauge(
            "medmesh_revocation_list_age_seconds",
            "Seconds since auth's revocation list was last pulled whole (+Inf before the first).",
        ).set_function(lambda: _revocation_list_age(app))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if audit_database is not database:
                await ensure_audit_tables(audit_database)
                stack.push_async_callback(audit_database.dispose)
            await audit.start()
            # The verifier on app.state at start (a test may have put its own there).
            feed = getattr(PlatformState.of(app).verifier, "revocations", None)
            if isinstance(feed, RevocationFeed):
                await feed.start()
                stack.push_async_callback(feed.aclose)
            stack.push_async_callback(database.dispose)
            if verifier is not None:
                stack.push_async_callback(verifier.aclose)
            stack.push_async_callback(audit.stop)
            for extra in lifespans:
                await stack.enter_async_context(extra(app))
            log.info("service_started", port=settings.effective_port)
            # What start-up made (modules, compiled statements, the app) lives as long as the
            # service: out of the collector's sight, a full collection no longer walks it (a
            # batch of thousands of readings triggers several; decision 0040). Given back at
            # the stop, so a process that runs services one after another (tests) frees them.
            gc.freeze()
            stack.callback(gc.unfreeze)
            yield
            log.info("service_stopping")

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        # The docs pages are add_api_docs's: their files come from the service, not a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # Tracing is the platform's (FastAPIInstrumentor, PHI-safe attributes); FastAPI's own
        # telemetry would trace every request twice and record raw query strings and inputs.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    renderers = ErrorRenderers(error_renderers)
    platform = state()
    platform.settings = settings
    platform.database = database
    platform.metrics = metrics
    platform.audit = audit
    platform.verifier = verifier
    platform.draining = False
    platform.error_renderers = renderers
    app.state = platform

    for router in routers:
        app.include_router(router)
    _add_operational_routes(app, [*readiness_checks, revocations])
    add_api_docs(app, issuer=settings.issuer)
    _add_error_handlers(app, renderers)

    instrument_engine(database.engine.sync_engine)
    shortcuts = direct_routes(app)
    if shortcuts:
        app.add_middleware(
            DirectRouteMiddleware, routes=shortcuts, exception_handlers=app.exception_handlers
        )
    app.add_middleware(SessionMiddleware, database=database)
    app.add_middleware(UnexpectedErrorMiddleware, respond=renderers)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, respond=renderers)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(ServerTracingMiddleware)
    return app


def _revocation_list_age(app: FastAPI) -> float:
    feed = getattr(PlatformState.of(app).verifier, "revocations", None)
    return feed.age_seconds if isinstance(feed, RevocationFeed) else 0.0


async def revocations(app: FastAPI) -> None:
    """Ready only while auth's revocation list is fresh (bearer tokens get 503 otherwise)."""
    feed = getattr(PlatformState.of(app).verifier, "revocations", None)
    if isinstance(feed, RevocationFeed):
        feed.check_fresh()


def _add_operational_routes(app: FastAPI, checks: Sequence[ReadinessCheck]) -> None:
    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        """Answers 200 while the process runs; it checks nothing else."""
        return {"status": "ok"}

    @ops.get("/readyz", summary="Readiness: database and required peers answer")
    async def readyz(request: Request) -> Response:
        """200 when the database (and the peers this service needs) answer; 503 while draining."""
        platform = PlatformState.of(request.app)
        if platform.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        problems: list[str] = []
        try:
            await platform.database.ping()
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        for check in checks:
            try:
                await check(request.app)
            except Exception as exc:
                problems.append(f"{getattr(check, '__name__', 'check')}: {type(exc).__name__}")
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        """The service's metrics in the Prometheus text exposition format."""
        metrics = PlatformState.of(request.app).metrics
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(ops)


def _add_error_handlers(app: FastAPI, renderers: ErrorRenderers) -> None:
    @app.exception_handler(MedmeshError)
    async def medmesh_error(request: Request, exc: MedmeshError) -> Response:
        return renderers(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return renderers(request, BadRequest(_describe_validation(exc), code="invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        error = MedmeshError(
            str(exc.detail),
            status=exc.status_code,
            code=codes.get(exc.status_code, "http_error"),
            headers=dict(exc.headers or {}),
        )
        return renderers(request, error)
