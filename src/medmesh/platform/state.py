"""The typed state of a service app: what :func:`~medmesh.platform.app.create_service_app` sets
up once, read with :meth:`PlatformState.of` instead of untyped ``app.state`` attributes.

A service with state of its own subclasses :class:`PlatformState` (typed attributes only) and
passes the subclass to ``create_service_app(state=...)``; its accessor is the same
:meth:`PlatformState.of`, called on the subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from medmesh.platform.audit import AuditTrail
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import Database
from medmesh.platform.errors import MedmeshError
from medmesh.platform.metrics import ServiceMetrics
from medmesh.platform.tokens import TokenVerifier

__all__ = ["PlatformState"]

S = TypeVar("S", bound="PlatformState")


class PlatformState(State):
    """``app.state`` of every service app (a Starlette ``State``, so tests can still replace an
    attribute, such as the verifier, by assignment)."""

    settings: ServiceSettings
    database: Database
    metrics: ServiceMetrics
    #: The service's hash-chained audit trail (its own database on SQLite).
    audit: AuditTrail
    #: None for an app built with ``verify_tokens=False``.
    verifier: TokenVerifier | None
    #: True once the server began its graceful drain (``/readyz`` answers 503).
    draining: bool
    #: Renders an error in the API style of the request's path.
    error_renderers: Callable[[Request, MedmeshError], Response]

    @classmethod
    def of(cls: type[S], app: Starlette) -> S:
        """The app's state, as ``cls`` (the app must have been built with it)."""
        state = app.state
        if not isinstance(state, cls):
            raise TypeError(f"the app's state is not a {cls.__name__} (see create_service_app)")
        return state
