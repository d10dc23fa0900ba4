"""A resource server for the verification benchmark: one open route, one behind RequireScopes."""

from __future__ import annotations

import json
import os
from typing import Annotated

from fastapi import Depends, FastAPI

from medmesh.platform.tokens import Principal, RequireScopes, TokenVerifier

app = FastAPI()
app.state.verifier = TokenVerifier(
    os.environ["BENCH_ISSUER"], "medmesh-phi", jwks=json.loads(os.environ["BENCH_JWKS"])
)
Reader = Annotated[Principal, Depends(RequireScopes("system/Patient.r"))]


@app.get("/open")
async def open_route() -> dict[str, str]:
    return {"sub": "anonymous"}


@app.get("/protected")
async def protected_route(principal: Reader) -> dict[str, str]:
    return {"sub": principal.sub}
