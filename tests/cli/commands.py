"""Running ``medmesh`` commands from async tests, and the audit-trail check every service shares."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from typer.testing import CliRunner, Result

from medmesh.cli import app
from medmesh.platform.audit import audit_database_for
from medmesh.platform.db import Database


async def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    """``medmesh <args>`` with ``env``; the commands run their own event loop (asyncio.run), so
    they run off the test's loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, args, env=env)


async def verify_then_tamper(service: str, database_url: str, env: dict[str, str]) -> str:
    """`medmesh audit verify <service>` passes; after record 1 is edited in the database it
    names that record. Returns what the passing run printed."""
    ok = await invoke(["audit", "verify", service], env)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(f"{service}: audit trail intact ("), ok.output

    audit_db = audit_database_for(Database(database_url))
    async with audit_db.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1"))
    await audit_db.dispose()
    broken = await invoke(["audit", "verify", service], env)
    assert broken.exit_code == 1, broken.output
    assert f"{service}: audit trail BROKEN at record 1" in broken.output
    return ok.output
