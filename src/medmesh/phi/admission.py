"""Admission of writes: how many creates, updates, deletes and Bundles run at once.

A write is admitted only once its body is read and parsed and its token checked, so a slot is
never held while a client sends (or trickles) its body. At most ``slots`` writes are in
progress (``PhiSettings.concurrent_writes``) and at most ``per_client`` of them belong to one
OAuth client (``PhiSettings.writes_per_client``); a write over its client's share waits for one
of its client's slots, holding nothing, so one client cannot take every slot while the others
wait. A token that holds no scope for the write would be refused anyway: its request runs
without a slot (the service refuses and audits it) and never waits behind real writes.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from medmesh.platform.tokens import Principal


class _NoSlot:
    """The admission of a request that cannot write: nothing to take or give back."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_NO_SLOT = _NoSlot()


class WriteSlot:
    """One write's turn: its client's share first, then one of the service's slots."""

    __slots__ = ("_admission", "_client")

    def __init__(self, admission: WriteAdmission, client: str) -> None:
        self._admission = admission
        self._client = client

    async def __aenter__(self) -> None:
        await self._admission.acquire(self._client)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._admission.release(self._client)


class WriteAdmission:
    """At most ``slots`` writes at once, at most ``per_client`` of them from one client."""

    def __init__(self, slots: int, per_client: int) -> None:
        if slots < 1 or per_client < 1:
            raise ValueError("slots and per_client must be positive")
        self.slots = slots
        self.per_client = min(per_client, slots)
        self._free = asyncio.Semaphore(slots)
        #: Each client with a write admitted or waiting: its share and how many use it.
        self._clients: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    def slot(
        self, principal: Principal, resource_type: str | None, permissions: str
    ) -> _NoSlot | WriteSlot:
        """The admission of a write needing one of ``permissions`` (c, u, d) on ``resource_type``
        (None: on any type, a Bundle). A token with no scope granting any of them gets no slot:
        the service refuses its write (and audits the refusal) without waiting for one."""
        scopes = principal.scopes.smart
        if resource_type is None:
            can_write = any(scope.permissions & frozenset(permissions) for scope in scopes)
        else:
            can_write = any(
                scope.allows(resource_type, permission)
                for scope in scopes
                for permission in permissions
            )
        if not can_write:
            return _NO_SLOT
        return WriteSlot(self, principal.client_id or principal.sub)

    async def acquire(self, client: str) -> None:
        """Wait for one of ``client``'s share, then for a free slot."""
        entry = self._clients.get(client)
        if entry is None:
            entry = self._clients[client] = (asyncio.Semaphore(self.per_client), [0])
        share, users = entry
        users[0] += 1
        try:
            await share.acquire()
        except BaseException:
            self._leave(client, users)
            raise
        try:
            await self._free.acquire()
        except BaseException:
            share.release()
            self._leave(client, users)
            raise

    def release(self, client: str) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        self._free.release()
        share, users = self._clients[client]
        share.release()
        self._leave(client, users)

    def _leave(self, client: str, users: list[int]) -> None:
        users[0] -= 1
        if not users[0]:
            del self._clients[client]  # the map holds only clients with writes in flight
