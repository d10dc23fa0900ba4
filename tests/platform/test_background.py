"""``platform.background.running``: the work runs while the block runs and not after it."""

from __future__ import annotations

import asyncio

import pytest

from medmesh.platform.background import running


async def test_the_work_runs_during_the_block_and_is_cancelled_at_its_end() -> None:
    ticks: list[int] = []
    cancelled = asyncio.Event()

    async def work() -> None:
        try:
            while True:
                ticks.append(len(ticks))
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with running(work(), "ticking") as task:
        assert task.get_name() == "ticking"
        for _ in range(5):
            await asyncio.sleep(0)
        assert ticks
    seen = len(ticks)
    await asyncio.sleep(0)

    assert cancelled.is_set()
    assert task.cancelled()
    assert len(ticks) == seen


async def test_an_error_in_the_block_still_ends_the_work_and_propagates() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match="in the block"):
        async with running(forever(), "waiting") as task:
            raise RuntimeError("in the block")

    assert task.cancelled()


async def test_work_that_ended_on_its_own_ends_the_block_quietly() -> None:
    async def brief() -> None:
        return None

    async with running(brief(), "brief") as task:
        await asyncio.sleep(0)
        assert task.done()

    assert not task.cancelled()
