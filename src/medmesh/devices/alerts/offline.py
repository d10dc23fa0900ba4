"""The periodic check of offline rules (every ``OFFLINE_CHECK_SECONDS``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from medmesh.devices.alerts.service import AlertService
from medmesh.platform.background import running
from medmesh.platform.db import Database
from medmesh.platform.logging import get_logger

log = get_logger("medmesh.devices.alerts")


@asynccontextmanager
async def offline_checks(
    database: Database, alerts: AlertService, interval: float, on_opened: Callable[[], None]
) -> AsyncIterator[None]:
    """Check for silent devices while the block runs (``on_opened`` after alerts were opened)."""

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if await alerts.check_offline(database):
                    on_opened()
            except Exception as exc:
                log.warning("offline_check_failed", error=type(exc).__name__)

    async with running(run(), "devices-offline-checks"):
        yield
