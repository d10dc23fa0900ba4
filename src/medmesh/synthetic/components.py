"""The service's domain services (built once per app), its typed app state, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from medmesh.platform.origin import RequestOrigin
from medmesh.platform.state import PlatformState
from medmesh.platform.tokens import Principal, RequireScopes
from medmesh.synthetic.generate.service import GenerationService
from medmesh.synthetic.jobs.service import JobService
from medmesh.synthetic.jobs.supervisor import JobSupervisor

#: The one scope of this API (ARCHITECTURE §4).
GENERATE_SCOPE = "synthetic:generate"


@dataclass
class SyntheticComponents:
    generation: GenerationService
    jobs: JobService
    supervisor: JobSupervisor


class SyntheticState(PlatformState):
    """``app.state`` of the synthetic-phi-service."""

    synthetic: SyntheticComponents


async def get_components(request: Request) -> SyntheticComponents:
    return SyntheticState.of(request.app).synthetic


Components = Annotated[SyntheticComponents, Depends(get_components)]
CanGenerate = Annotated[Principal, Depends(RequireScopes(GENERATE_SCOPE))]


async def authorized_caller(request: Request, principal: CanGenerate) -> RequestOrigin:
    """The verified caller holding ``synthetic:generate``, with where the request came from."""
    return RequestOrigin.of(request, principal)


AuthorizedCaller = Annotated[RequestOrigin, Depends(authorized_caller)]
