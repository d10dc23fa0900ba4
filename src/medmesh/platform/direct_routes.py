"""Direct routes: the hottest endpoints, served without FastAPI's routing and dependency solving.

A route marked with :func:`direct` is an ordinary FastAPI route (documented in OpenAPI, reachable
through the router) whose endpoint takes only the :class:`~starlette.requests.Request`. The
innermost platform middleware looks such routes up by exact method and path and calls the
endpoint itself: the router's matching over every route, its sub-app layers and the dependency
solver cost more than the whole body of a token or introspection endpoint (measured: bench/auth).
Everything outside — tracing, metrics (the route template is set as the router would), security
headers, body limit, the request session — applies unchanged, and exceptions go to the app's own
exception handlers, as the router would send them.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

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


def direct_routes(app: FastAPI) -> dict[tuple[str, str], tuple[DirectEndpoint, APIRoute]]:
    """The app's direct routes by (method, path); paths with parameters are not eligible."""
    table: dict[tuple[str, str], tuple[DirectEndpoint, APIRoute]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not getattr(route.endpoint, _MARK, False):
            continue
        path = context.path
        if path is None or route.param_convertors or path != route.path:
            raise TypeError(f"{route.path}: a direct route needs a fixed path of its own")
        for method in route.methods or ():
            table[(method, path)] = (route.endpoint, route)
    return table


class DirectRouteMiddleware:
    """Serve the direct routes; pass every other request to the router."""

    def __init__(
        self,
        app: ASGIApp,
        routes: dict[tuple[str, str], tuple[DirectEndpoint, APIRoute]],
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
        found: Any = None
        if scope["type"] == "http":
            found = self.routes.get((scope["method"], scope["path"]))
        if found is None:
            await self.app(scope, receive, send)
            return
        endpoint, route = found
        scope["route"] = route
        scope["endpoint"] = endpoint
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
