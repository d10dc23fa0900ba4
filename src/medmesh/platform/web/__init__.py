"""The HTTP edge of a service: security headers, body limits, rate limiting, direct routes and
the server process with its graceful drain.
"""

from medmesh.platform.web.body import (
    BODY_READ_TIMEOUT,
    BodyLimitMiddleware,
    BodyReadTimeout,
)
from medmesh.platform.web.direct_routing import (
    FASTAPI_FLOOR,
    DirectEndpoint,
    DirectRouteMiddleware,
    DirectRoutes,
    ExceptionHandler,
    direct,
    direct_routes,
)
from medmesh.platform.web.headers import (
    API_CSP,
    DOCS_CSP,
    DOCS_PATHS,
    SECURITY_HEADERS,
    SecurityHeadersMiddleware,
    docs_csp,
)
from medmesh.platform.web.rate_limit import (
    RateDecision,
    RateLimiter,
    client_ip,
)
from medmesh.platform.web.server import (
    LINGER_SECONDS,
    DrainingServer,
    GuardedConfig,
    GuardedH11Protocol,
    run_app,
    server_config,
)

__all__ = [
    "API_CSP",
    "BODY_READ_TIMEOUT",
    "DOCS_CSP",
    "DOCS_PATHS",
    "FASTAPI_FLOOR",
    "LINGER_SECONDS",
    "SECURITY_HEADERS",
    "BodyLimitMiddleware",
    "BodyReadTimeout",
    "DirectEndpoint",
    "DirectRouteMiddleware",
    "DirectRoutes",
    "DrainingServer",
    "ExceptionHandler",
    "GuardedConfig",
    "GuardedH11Protocol",
    "RateDecision",
    "RateLimiter",
    "SecurityHeadersMiddleware",
    "client_ip",
    "direct",
    "direct_routes",
    "docs_csp",
    "run_app",
    "server_config",
]
