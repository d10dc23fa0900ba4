"""The HTTP edge of a service: security headers, body limits, rate limiting, cross-origin
requests, direct routes and the server process with its graceful drain.
"""

from medmesh.platform.web.body import (
    BODY_READ_TIMEOUT,
    BodyLimitMiddleware,
    BodyReadTimeout,
)
from medmesh.platform.web.cors import (
    PREFLIGHT_MAX_AGE_SECONDS,
    TOKEN_REQUEST_HEADERS,
    CrossOriginMiddleware,
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
    GuardedHttpProtocol,
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
    "PREFLIGHT_MAX_AGE_SECONDS",
    "SECURITY_HEADERS",
    "TOKEN_REQUEST_HEADERS",
    "BodyLimitMiddleware",
    "BodyReadTimeout",
    "CrossOriginMiddleware",
    "DirectEndpoint",
    "DirectRouteMiddleware",
    "DirectRoutes",
    "DrainingServer",
    "ExceptionHandler",
    "GuardedConfig",
    "GuardedHttpProtocol",
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
