"""The typed principal of the admin API (scope ``auth:admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from medmesh.platform.tokens import Principal, RequireScopes

Admin = Annotated[Principal, Depends(RequireScopes("auth:admin"))]
Auditor = Annotated[Principal, Depends(RequireScopes("audit:read"))]
