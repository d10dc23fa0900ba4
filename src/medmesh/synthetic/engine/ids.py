"""Seeds and identifiers, derived with a stable hash so every process agrees.

Python's ``hash()`` is salted per process; blake2b is not, so patient ``i`` of seed ``s`` gets
the same random stream on any machine, in any worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from random import Random

#: The last four hex digits of an id: a per-patient counter (a table lookup, no formatting).
_COUNTER_HEX = tuple(f"{n:04x}" for n in range(1 << 16))


def derived_seed(seed: int, *parts: object) -> int:
    """A 128-bit seed from the run seed and a label (a patient index, "directory", ...)."""
    text = "/".join([str(seed), *(str(p) for p in parts)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=16).digest(), "big")


def uuid_factory(rng: Random) -> Callable[[], str]:
    """A function returning UUID-shaped (version 4, RFC 4122 variant) ids for one patient.

    The first 106 bits are drawn from ``rng`` (again after every 65,536 ids), the last 16 are a
    counter: ids are unique within the patient by construction and across patients with the
    odds of random UUIDs, without formatting 128 fresh bits per resource (the hot path makes
    ~100 ids per patient).
    """
    table = _COUNTER_HEX
    counter = 0
    prefix = _random_prefix(rng)

    def new_id() -> str:
        nonlocal counter, prefix
        counter += 1
        if counter == 1 << 16:
            counter, prefix = 1, _random_prefix(rng)
        return prefix + table[counter]

    return new_id


def _random_prefix(rng: Random) -> str:
    """``xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxx`` (V the RFC 4122 variant), 106 random bits."""
    head = f"{rng.getrandbits(106):027x}"
    variant = "89ab"[int(head[0], 16) & 3]
    return f"{head[1:9]}-{head[9:13]}-4{head[13:16]}-{variant}{head[16:19]}-{head[19:27]}"
