"""Telling the caller that break-glass was used: the ``X-Break-Glass-Used: true`` header.

Each request's :class:`AccessPolicy` is registered in the ASGI scope; when the response
starts and any of them had to break the glass, this middleware adds the header. A
header rather than an OperationOutcome warning, because it fits every answer alike
(a resource, a searchset Bundle, a 204) without changing its body; the access itself is
recorded in the audit trail (purpose = the reason, details ``break_glass: true``).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medmesh.phi.access.policy import AccessPolicy

BREAK_GLASS_HEADER = "X-Break-Glass-Used"
_SCOPE_KEY = "medmesh.phi.policies"


def register_policy(request: Request, policy: AccessPolicy) -> None:
    """Remember the request's policy so that the response can report break-glass."""
    policies: list[AccessPolicy] = request.scope.setdefault(_SCOPE_KEY, [])
    policies.append(policy)


class BreakGlassHeaderMiddleware:
    """Adds ``X-Break-Glass-Used: true`` to responses of requests that broke the glass."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The list object is shared even when inner layers copy the scope dict.
        policies: list[AccessPolicy] = []
        scope[_SCOPE_KEY] = policies

        async def send_with_flag(message: Message) -> None:
            if message["type"] == "http.response.start" and any(
                p.break_glass_used for p in policies
            ):
                MutableHeaders(scope=message)[BREAK_GLASS_HEADER] = "true"
            await send(message)

        await self.app(scope, receive, send_with_flag)
