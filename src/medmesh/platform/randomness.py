"""Random bytes from the operating system's generator, read ahead.

On a virtual machine one ``getrandom`` call (what ``os.urandom`` and ``secrets`` make) costs
several microseconds: more than the rest of a server-assigned id, and a tenth of sealing a
resource. :func:`random_bytes` reads :data:`RANDOM_BYTES` at a time and hands each byte out
once. The bytes are the same ones ``os.urandom`` gives, only read sooner; a forked child drops
what its parent read ahead, so that two processes never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

#: How many random bytes are read from the operating system at a time.
RANDOM_BYTES = 4096


class _ReadAhead:
    """The operating system's random bytes, read ahead and handed out once each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        if count > RANDOM_BYTES:
            return os.urandom(count)
        with self._lock:
            at = self._at
            if at + count > len(self._bytes):
                self._bytes, at = os.urandom(RANDOM_BYTES), 0
            self._at = at + count
            return self._bytes[at : at + count]

    def forget(self) -> None:
        """Drop what was read ahead (in a forked child: those bytes are its parent's)."""
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0


_read_ahead = _ReadAhead()
os.register_at_fork(after_in_child=_read_ahead.forget)


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the operating system's generator (each handed out once)."""
    return _read_ahead.take(count)
