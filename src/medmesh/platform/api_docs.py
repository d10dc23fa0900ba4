"""The API documentation every service serves, and the security its OpenAPI document declares.

``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts, styles and icon from the
service itself, under ``/docs/static/`` (the files the ``fastapi-offline`` package ships), so
they render on a network that reaches no other host. Each page carries a CSP that names no
other host: an inline script runs only by its hash.

The OpenAPI document declares two security schemes: ``oauth2``, the client-credentials flow
of the auth-service (``<issuer>/oauth/token``), and ``bearer``, a token pasted by hand.
An operation requires them when its dependencies verify the caller's token
(:func:`~medmesh.platform.tokens.get_principal` or a
:class:`~medmesh.platform.tokens.RequireScopes`, whose scopes it names); a route that checks
its token itself (a direct route) says so with ``openapi_extra=token_required()``. Swagger UI's
"Authorize" then obtains a token and sends it with every secured operation.

Why it is built so: ``docs/decisions/0024-api-docs-served-by-the-services.md``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from medmesh.platform.tokens import RequireScopes, get_principal
from medmesh.platform.web import docs_csp

#: Where the pages' scripts, styles and icon are served.
STATIC_PATH = "/docs/static"
#: The names of the security schemes in ``components.securitySchemes``.
OAUTH2 = "oauth2"
BEARER = "bearer"

_ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def token_required(*scopes: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that verifies its token itself (a direct route): the
    operation requires a token from either scheme, holding ``scopes`` when given."""
    return {"security": [{OAUTH2: list(scopes)}, {BEARER: []}]}


def asset_directory() -> Path:
    """The folder of Swagger UI's and ReDoc's files (from the ``fastapi-offline`` package)."""
    return Path(str(files("fastapi_offline") / "static"))


class DocsAssets(StaticFiles):
    """The pages' files, with fixed content types (not the machine's MIME table) and
    ``Cache-Control: no-cache``: a browser keeps them and revalidates them by ETag."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = _ASSET_TYPES.get(Path(full_path).suffix)
        if media_type is not None:
            response.headers["content-type"] = media_type
        response.headers["cache-control"] = "no-cache"
        return response


def add_api_docs(app: FastAPI, *, issuer: str) -> None:
    """Serve ``/docs``, ``/redoc`` and their files, and declare the OpenAPI security schemes.

    The app is built with ``docs_url=None, redoc_url=None``; ``issuer`` is the auth-service's
    URL, whose ``/oauth/token`` issues the tokens."""
    token_url = issuer.rstrip("/") + "/oauth/token"
    origin = _origin(token_url)
    app.mount(STATIC_PATH, DocsAssets(directory=asset_directory()), name="docs-static")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _with_csp(page, connect=[origin])

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
            with_google_fonts=False,
        )
        return _with_csp(page, connect=[])

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI builds the document once, then keeps it
            declare_security(FastAPI.openapi(app), app.routes, token_url=token_url)
        return FastAPI.openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def declare_security(
    document: dict[str, Any], routes: Sequence[BaseRoute], *, token_url: str
) -> None:
    """Add the security schemes to ``document`` and the requirements of each secured operation."""
    scopes: set[str] = set()
    # Routes as the OpenAPI generator sees them: an included router's routes with its prefix
    # and its dependencies.
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        requirement = _requirement(route.dependant)
        if requirement is None:
            continue
        operations = document.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is not None:
                operation.setdefault("security", requirement)
                for alternative in operation["security"]:
                    scopes.update(alternative.get(OAUTH2, ()))
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[OAUTH2] = {
        "type": "oauth2",
        "description": "A token of the auth-service for a client (client_credentials). Ticking "
        "no scope asks for every scope the client is allowed.",
        "flows": {
            "clientCredentials": {
                "tokenUrl": token_url,
                "scopes": {scope: f"operations that need {scope}" for scope in sorted(scopes)},
            }
        },
    }
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token of the auth-service, pasted as it is.",
    }


def _requirement(dependant: Dependant) -> list[dict[str, list[str]]] | None:
    """The security requirement of a route from its dependencies, or None (no token needed)."""
    guards = list(_guards(dependant))
    if not guards:
        return None
    # Every guard must hold; an any-of guard holds with any one of its scopes.
    choices = [
        [[scope] for scope in guard.scopes] if guard.any_of else [list(guard.scopes)]
        for guard in guards
        if isinstance(guard, RequireScopes)
    ]
    alternatives = []
    for combination in itertools.product(*choices):
        needed = sorted({scope for part in combination for scope in part})
        if {OAUTH2: needed} not in alternatives:
            alternatives.append({OAUTH2: needed})
    return [*alternatives, {BEARER: []}]


def _guards(dependant: Dependant) -> Iterator[object]:
    """The token checks among a dependant's dependencies, at any depth."""
    for dependency in dependant.dependencies:
        call = dependency.call
        if call is get_principal or isinstance(call, RequireScopes):
            yield call
        yield from _guards(dependency)


def _with_csp(page: HTMLResponse, *, connect: Sequence[str]) -> HTMLResponse:
    """The page with a CSP that lets exactly its own inline scripts run."""
    hashes = [
        "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    ]
    page.headers["content-security-policy"] = docs_csp(
        script_hashes=hashes, connect=connect
    ).decode()
    return page


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
