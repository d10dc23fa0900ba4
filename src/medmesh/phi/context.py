"""The request context every phi-service operation receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from medmesh.phi.access.policy import AccessPolicy
from medmesh.phi.fhir.references import LocalBases
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import Principal


@dataclass
class FhirContext:
    """Who is asking and from where (:attr:`origin`), with which rights (:attr:`policy`), and
    the bases this server is reached under."""

    origin: RequestOrigin
    policy: AccessPolicy
    #: Gives the public base of ``/fhir`` (see :attr:`base_url`).
    base_url_of: Callable[[], str] = field(repr=False)

    @property
    def principal(self) -> Principal:
        """The verified caller."""
        return self.policy.principal

    @cached_property
    def base_url(self) -> str:
        """The public base of ``/fhir``, worked out on first use (a read never needs it, and
        building it from the request's URL costs a twentieth of a read)."""
        return self.base_url_of()

    #: Gives every base this server is reached under (see :attr:`local_bases`); None: only
    #: :attr:`base_url`.
    local_bases_of: Callable[[], LocalBases] | None = field(default=None, repr=False)

    @cached_property
    def local_bases(self) -> LocalBases:
        """The configured base and the request's own: absolute references under either are
        references to this server (worked out only when an absolute reference is met)."""
        if self.local_bases_of is None:
            return LocalBases(self.base_url)
        return self.local_bases_of()
