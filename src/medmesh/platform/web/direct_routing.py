"""Direct routes: the hottest endpoints, served without FastAPI's routing and dependency solving.

A route marked with :func:`direct` is an ordinary FastAPI route (documented in OpenAPI, reachable
through the router) whose endpoint takes only the :class:`~starlette.requests.Request`. The
innermost platform middleware looks such routes up by exact method and path and calls the
endpoint itself: the router's matching over every route, its sub-app layers and the dependency
solver cost more than the whole body of a token or introspection endpoint (see
docs/decisions/0005-direct-routes.md).
Paths may have parameters (``/fhir/{resource_type}/{resource_id}``): the endpoint reads them from
``request.path_params``, and a request goes to the direct route only when no route the router
tries first would match it, so precedence is the router's.
Everything outside — tracing, metrics (the route template is set as the router would), security
headers, body limit, the request session — applies unchanged, and exceptions go to the app's own
exception handlers, as the router would send them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.convertors import Convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

#: The first FastAPI release with the route contexts the precedence check walks.
FASTAPI_FLOOR = "0.137.2"

try:
    from fastapi.routing import RouteContext, iter_route_contexts
except ImportError as missing:  # a test hides them
    raise ImportError(
        f"medmesh's direct routes need FastAPI >= {FASTAPI_FLOOR} (fastapi.routing.RouteContext "
        "and iter_route_contexts); install the version pinned in uv.lock"
    ) from missing

DirectEndpoint = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]
E = TypeVar("E", bound=DirectEndpoint)

_MARK = "__medmesh_direct__"


def direct(endpoint: E) -> E:
    """Mark an endpoint (``async def f(request: Request) -> Response``) to be served directly.

    Apply it below the router decorator (``@router.post(...)`` then ``@direct``)."""
    parameters = list(inspect.signature(endpoint).parameters.values())
    if len(parameters) != 1 or parameters[0].annotation not in (Request, "Request"):
        raise TypeError(f"{endpoint.__name__}: a direct endpoint takes only the Request")
    setattr(endpoint, _MARK, True)
    return endpoint


@dataclass(frozen=True, slots=True)
class _Template:
    """A direct route with path parameters, and the routes the router would try before it."""

    regex: re.Pattern[str]
    convertors: dict[str, Convertor[Any]]
    endpoint: DirectEndpoint
    route: APIRoute
    earlier: tuple[tuple[re.Pattern[str], frozenset[str] | None], ...]

    def match(self, method: str, path: str) -> dict[str, Any] | None:
        found = self.regex.match(path)
        if found is None:
            return None
        for regex, methods in self.earlier:
            if (methods is None or method in methods) and regex.match(path):
                return None  # the router would answer with that route
        return {k: self.convertors[k].convert(v) for k, v in found.groupdict().items()}


@dataclass
class DirectRoutes:
    """The app's direct routes: fixed paths by (method, path), templates by method."""

    fixed: dict[tuple[str, str], tuple[DirectEndpoint, APIRoute]] = field(default_factory=dict)
    templates: dict[str, list[_Template]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.fixed or self.templates)

    def keys(self) -> set[tuple[str, str]]:
        """(method, path template) of every direct route."""
        return set(self.fixed) | {
            (m, t.route.path) for m, templates in self.templates.items() for t in templates
        }

    def lookup(
        self, method: str, path: str
    ) -> tuple[DirectEndpoint, APIRoute, dict[str, Any]] | None:
        found = self.fixed.get((method, path))
        if found is not None:
            return found[0], found[1], {}
        for template in self.templates.get(method, ()):
            params = template.match(method, path)
            if params is not None:
                return template.endpoint, template.route, params
        return None


def _pattern(context: RouteContext) -> tuple[re.Pattern[str], frozenset[str] | None]:
    """What a route answers: its path regex and methods (None: any; a mount: its whole prefix)."""
    path = context.path or ""
    route = context.original_route
    if isinstance(route, Route):
        methods = frozenset(route.methods) if route.methods else None
        return compile_path(path)[0], methods
    return re.compile("^" + re.escape(path.rstrip("/")) + "(/.*)?$"), None


def direct_routes(app: FastAPI) -> DirectRoutes:
    """The app's direct routes, checked to answer exactly the requests the router would give them.

    A fixed path must not be claimed by a route the router tries first (an error at start-up);
    a path template is served directly only when no earlier route matches the request. A direct
    route skips dependency solving, so one whose route, router or app declares ``dependencies``
    (a ``RequireScopes`` guard, say) is refused at start-up rather than served unguarded."""
    table = DirectRoutes()
    seen: list[tuple[re.Pattern[str], frozenset[str] | None]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        pattern = _pattern(context)
        if isinstance(route, APIRoute) and getattr(route.endpoint, _MARK, False):
            path = context.path
            if path is None or path != route.path:
                raise TypeError(f"{route.path}: a direct route needs a path of its own")
            declared = [*app.router.dependencies, *route.dependencies]
            if declared:
                names = ", ".join(sorted({_dependency_name(d) for d in declared}))
                raise TypeError(
                    f"{path}: a direct route skips dependency solving, yet its route, router or "
                    f"app declares dependencies ({names}); check them in the endpoint instead"
                )
            regex, convertors = pattern[0], compile_path(path)[2]
            for method in sorted(route.methods or ()):
                earlier = tuple((r, m) for r, m in seen if m is None or method in m)
                if not convertors:
                    if any(r.match(path) for r, _ in earlier):
                        raise TypeError(f"{method} {path}: an earlier route answers it")
                    table.fixed[(method, path)] = (route.endpoint, route)
                else:
                    template = _Template(regex, convertors, route.endpoint, route, earlier)
                    table.templates.setdefault(method, []).append(template)
        seen.append(pattern)
    return table


def _dependency_name(dependency: Any) -> str:
    call = getattr(dependency, "dependency", None)
    return getattr(call, "__name__", None) or type(call).__name__


class DirectRouteMiddleware:
    """Serve the direct routes; pass every other request to the router."""

    def __init__(
        self,
        app: ASGIApp,
        routes: DirectRoutes,
        exception_handlers: Mapping[Any, ExceptionHandler],
    ) -> None:
        self.app = app
        self.routes = routes
        self.exception_handlers = exception_handlers

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http":
            found = self.routes.lookup(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        endpoint, route, params = found
        scope["route"] = route
        scope["endpoint"] = endpoint
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            handled = handler(request, exc)
            response = await handled if inspect.isawaitable(handled) else handled
        await response(scope, receive, send)
