"""Who is calling and from where: the part of every audit record a request supplies."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from medmesh.platform.logging import request_id_var
from medmesh.platform.tokens import Principal, ScopeSet
from medmesh.platform.web import client_ip

__all__ = ["RequestOrigin"]


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """The verified caller (None before a token is checked, or on a public route), the peer
    address and the request id."""

    ip: str
    request_id: str | None = None
    principal: Principal | None = None

    @classmethod
    def of(cls, request: Request, principal: Principal | None = None) -> RequestOrigin:
        """The origin of ``request``, made on behalf of ``principal`` when one is known."""
        return cls(client_ip(request), request_id_var.get(), principal)

    @property
    def verified(self) -> Principal:
        """The verified caller, on a route that requires a token (made with one)."""
        if self.principal is None:
            raise RuntimeError("this request origin has no verified caller")
        return self.principal

    @property
    def subject(self) -> str | None:
        """The token's ``sub`` (a user id, or the client's id for a client acting for itself)."""
        return self.principal.sub if self.principal is not None else None

    @property
    def client_id(self) -> str | None:
        return self.principal.client_id if self.principal is not None else None

    @property
    def roles(self) -> tuple[str, ...]:
        """The caller's roles, sorted (as audit records list them)."""
        return tuple(sorted(self.principal.roles)) if self.principal is not None else ()

    @property
    def scopes(self) -> ScopeSet:
        return self.principal.scopes if self.principal is not None else ScopeSet("")
