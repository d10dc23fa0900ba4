"""Requests that hold a pooled connection while they wait for their audit record never starve
the audit writer (it has a pool of its own), even when they outnumber the pool."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from fastapi import APIRouter, Request
from sqlalchemy import text

from medmesh.platform.app import create_service_app
from medmesh.platform.audit import AuditRecord, ensure_audit_tables, list_records
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import Database, SessionDep
from medmesh.platform.testing import app_client


class PoolSettings(ServiceSettings):
    service_name: ClassVar[str] = "pooltest"


router = APIRouter()


@router.get("/records/{n}")
async def read_and_audit(n: int, request: Request, session: SessionDep) -> dict[str, int]:
    await session.execute(text("SELECT 1"))  # the request now holds a pooled connection
    await request.app.state.audit.record(AuditRecord(action="test.read", resource_id=str(n)))
    return {"n": n}


async def test_audit_writer_is_not_starved_by_requests_holding_the_pool(
    database_url: str, tmp_path: Path
) -> None:
    settings = PoolSettings(database_url=database_url, var_dir=tmp_path)
    database = Database(database_url, pool_size=2)  # 2 + 2 overflow connections for 20 requests
    await ensure_audit_tables(database)
    app = create_service_app(
        settings,
        title="t",
        version="1",
        description="",
        routers=[router],
        verify_tokens=False,
        database=database,
    )
    async with app_client(app) as client:
        responses = await asyncio.wait_for(
            asyncio.gather(*(client.get(f"/records/{n}") for n in range(20))), timeout=20
        )
        assert [r.status_code for r in responses] == [200] * 20
        records = await list_records(app.state.audit.database, action="test.read")
    assert sorted(int(r.resource_id or -1) for r in records) == list(range(20))
