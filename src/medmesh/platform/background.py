"""Work that runs beside a service while it serves (periodic checks, gauges, housekeeping)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``work`` as a task named ``name`` while the block runs; when the block ends (however
    it ends) the task is cancelled and waited for, so nothing of it outlives the block; an error
    the work ended with is raised there."""
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
