"""The service's domain services (built once per app), and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from medmesh.platform.logging import request_id_var
from medmesh.platform.tokens import Principal, RequireScopes
from medmesh.platform.web import client_ip
from medmesh.synthetic.auditing import Caller
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


async def get_components(request: Request) -> SyntheticComponents:
    components: SyntheticComponents = request.app.state.synthetic
    return components


Components = Annotated[SyntheticComponents, Depends(get_components)]
CanGenerate = Annotated[Principal, Depends(RequireScopes(GENERATE_SCOPE))]


async def authorized_caller(request: Request, principal: CanGenerate) -> Caller:
    """The verified caller holding ``synthetic:generate``, with where the request came from."""
    return Caller(principal, client_ip(request), request_id_var.get())


AuthorizedCaller = Annotated[Caller, Depends(authorized_caller)]
