"""Bulk units pace the garbage collector while they run and put its thresholds back after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from medmesh.phi.collection_pacing import BULK_THRESHOLDS, bulk_collection_pacing


@pytest.fixture(autouse=True)
def known_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_overlapping_units_keep_the_pacing_until_the_last_one_ends() -> None:
    first, second = bulk_collection_pacing(), bulk_collection_pacing()
    first.__enter__()
    assert gc.get_threshold() == BULK_THRESHOLDS
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == BULK_THRESHOLDS
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_unit_that_fails_puts_the_thresholds_back() -> None:
    with pytest.raises(RuntimeError), bulk_collection_pacing():
        raise RuntimeError("the chunk failed")
    assert gc.get_threshold() == (700, 10, 10)
