"""Identifiers that are random *and* ordered by creation time (RFC 9562 UUID version 7).

A random id (UUID version 4) lands at a random place in every B-tree that starts with it: with
SQLite, each insert of a resource and of its search-index rows then dirties a page of its own,
and every dirtied page is written to the WAL and again at the checkpoint. An id whose first 48
bits are the creation time in milliseconds is appended at the right edge of those B-trees
instead, where consecutive inserts share pages (see docs/decisions/0014-time-ordered-ids.md).
The other 74 bits are random, so ids stay unguessable; the creation time they reveal is
the one ``meta.lastUpdated`` of a first version shows anyway.
"""

from __future__ import annotations

import os
import time

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_A = 0xFFF
_RAND_B = (1 << 62) - 1


def uuid7_hex(now_ms: int | None = None) -> str:
    """A UUID version 7 as 32 lowercase hex digits (a valid FHIR id and a valid UUID)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION
        | ((rand >> 64) & _RAND_A) << 64
        | _VARIANT
        | (rand & _RAND_B)
    )
    return f"{value:032x}"
