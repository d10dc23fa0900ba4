"""Security headers on every response: HSTS, ``nosniff``, ``DENY`` framing, a strict CSP, no referrer,
no powerful features and ``Cache-Control: no-store`` (PHI and tokens are never cached); the docs
pages get a CSP that lets Swagger UI and ReDoc load from the service itself and from no other host."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"


def docs_csp(*, script_hashes: Sequence[str] = (), connect: Sequence[str] = ()) -> bytes:
    """The CSP of an API documentation page: its scripts, styles, images and workers come from
    the service itself; an inline script runs only when its ``'sha256-…'`` source is listed; the
    page may also send requests to the ``connect`` origins (the token endpoint of the issuer).

    Styles may be inline: ReDoc writes its styles into ``<style>`` elements as it renders."""
    scripts = " ".join(["'self'", *(f"'{h}'" for h in script_hashes)])
    connects = " ".join(["'self'", *connect])
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; connect-src {connects}; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ).encode()


DOCS_CSP = docs_csp()
DOCS_PATHS = frozenset({"/docs", "/redoc"})


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the security headers to every HTTP response.

    A header the response already has (a route's own ``Cache-Control``, say) is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._defaults = {
            csp: (
                *SECURITY_HEADERS,
                (b"content-security-policy", csp),
                (b"cache-control", b"no-store"),
            )
            for csp in (API_CSP, DOCS_CSP)
        }
        self._names = frozenset(name for name, _ in self._defaults[API_CSP])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = self._defaults[DOCS_CSP if scope["path"] in DOCS_PATHS else API_CSP]
        names = self._names

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = names.intersection([name.lower() for name, _ in headers])
                if present:
                    headers += [pair for pair in defaults if pair[0] not in present]
                else:
                    headers += defaults
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)
