"""Python's cyclic garbage collector paced for bulk writes.

A chunk of NDJSON lines or a transaction Bundle holds hundreds of parsed resources alive until
it commits; with the default thresholds (a collection every 700 new objects) the collector
traverses them again and again while they are built, about a fifth of the CPU of a bulk write
(docs/decisions/0033-phi-bulk-writes-cpu.md). While at least one bulk unit runs, collections
come after :data:`BULK_THRESHOLDS` allocations instead; the thresholds in force before are put
back when the last one ends. Objects without cycles are freed as always (reference counting);
only cyclic garbage waits a little longer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

#: ``gc.set_threshold`` while bulk units run.
BULK_THRESHOLDS = (200_000, 50, 100)


class _Pacing:
    def __init__(self) -> None:
        self.running = 0
        self.saved: tuple[int, int, int] | None = None

    @contextmanager
    def bulk(self) -> Iterator[None]:
        if self.running == 0:
            self.saved = gc.get_threshold()
            gc.set_threshold(*BULK_THRESHOLDS)
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            if self.running == 0 and self.saved is not None:
                gc.set_threshold(*self.saved)
                self.saved = None


_PACING = _Pacing()


def bulk_collection_pacing() -> AbstractContextManager[None]:
    """Collections paced for bulk work while the block runs (blocks may overlap)."""
    return _PACING.bulk()
