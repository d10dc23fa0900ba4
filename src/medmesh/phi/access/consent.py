"""Consent denials: the patients whose Consent refuses ``user/`` access to their record.

What is supported (FHIR R4 ``Consent``): a Consent with ``status`` ``active`` whose
top-level ``provision.type`` is ``deny`` and that does not narrow the denial
(no ``provision.actor``, ``action``, ``securityLabel``, ``purpose``, ``class``,
``code``, ``data``, ``dataPeriod`` and no nested ``provision``) denies access to the
whole record of its ``patient``. A ``provision.period`` is honoured: the denial
holds only inside it. Narrower denials (for one actor, one class of data, ...) are
stored but not enforced — the AccessPolicy would have to fail closed or open on
them, and failing open silently would be worse than saying here that they are not
supported.

Effect (see :class:`~medmesh.phi.access.policy.AccessPolicy`): ``user/`` scopes
cannot read, search or write a denied patient's data; ``system/`` scopes can, and a
clinician may break the glass.

The set is cached in memory and re-read at most every ``ttl_seconds`` (so a
Consent written by another replica takes effect within that time) and at once
after :meth:`ConsentRegistry.changed` (a Consent written in this process).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from medmesh.phi.access.repository import current_consents
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.protection import PhiProtection
from medmesh.platform.db import Database
from medmesh.platform.logging import get_logger

log = get_logger("medmesh.phi.consent")

#: Elements of ``Consent.provision`` that narrow a denial to less than the whole record.
NARROWING = (
    "actor",
    "action",
    "securityLabel",
    "purpose",
    "class",
    "code",
    "data",
    "dataPeriod",
    "provision",
)
_PAGE = 500


def _bounds(value: Any) -> tuple[datetime, datetime] | None:
    """The instants a FHIR date or dateTime covers: ``[start, end)`` (a day, month or year for dates)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) <= 10:
            parts = [int(p) for p in value.split("-")]
            start = datetime(
                parts[0],
                parts[1] if len(parts) > 1 else 1,
                parts[2] if len(parts) > 2 else 1,
                tzinfo=UTC,
            )
            if len(parts) == 1:
                return start, start.replace(year=start.year + 1)
            if len(parts) == 2:
                following = (
                    (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
                )
                return start, start.replace(year=following[0], month=following[1])
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment, moment


def denies_whole_record(consent: dict[str, Any], now: datetime) -> bool:
    """True when ``consent`` is an active, unnarrowed ``deny`` in force at ``now``."""
    if consent.get("status") != "active":
        return False
    provision = consent.get("provision")
    if not isinstance(provision, dict) or provision.get("type") != "deny":
        return False
    if any(provision.get(name) for name in NARROWING):
        return False
    period = provision.get("period")
    if isinstance(period, dict):
        start, end = _bounds(period.get("start")), _bounds(period.get("end"))
        if (start is not None and now < start[0]) or (end is not None and now > end[1]):
            return False
    return True


class ConsentRegistry:
    """The in-memory set of patients whose Consent denies ``user/`` access."""

    def __init__(self, protection: PhiProtection, *, ttl_seconds: float = 5.0) -> None:
        self.protection = protection
        self.ttl_seconds = ttl_seconds
        self._denied: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._generation = 0
        self._loaded_generation = -1
        self._lock = asyncio.Lock()

    def changed(self, session: AsyncSession | None = None) -> None:
        """A Consent was written or deleted here: re-read on next use.

        With the writing ``session``, the set is marked stale again once that
        transaction commits, so a refresh that ran between the write and its commit
        (and so missed it) is not trusted.
        """
        self._generation += 1
        if session is not None:
            event.listen(session.sync_session, "after_commit", self._after_commit, once=True)

    def _after_commit(self, _session: Session) -> None:
        self._generation += 1

    async def denied_patients(self, database: Database) -> frozenset[str]:
        """The denied patients' ids (cached; re-read when stale)."""
        if self._fresh():
            return self._denied
        async with self._lock:
            if self._fresh():
                return self._denied
            generation = self._generation
            started = time.monotonic()
            denied = await self._load(database)
            self._denied = denied
            # A change during the load leaves the set stale, so the next use reads again.
            self._loaded_at = started if generation == self._generation else float("-inf")
            self._loaded_generation = generation
            return denied

    def _fresh(self) -> bool:
        return (
            self._loaded_generation == self._generation
            and time.monotonic() - self._loaded_at < self.ttl_seconds
        )

    async def _load(self, database: Database) -> frozenset[str]:
        now = datetime.now(UTC)
        denied: set[str] = set()
        after: str | None = None
        async with database.sessionmaker() as session:
            while True:
                rows = await current_consents(session, after_id=after, limit=_PAGE)
                for row in rows:
                    if row.body is None:
                        continue
                    try:
                        consent = self.protection.open(
                            row.body, row.resource_type, row.id, row.version
                        )
                    except Exception as exc:  # an unreadable row must not lock everyone out
                        log.error("consent_unreadable", consent_id=row.id, error=type(exc).__name__)
                        continue
                    patient = compartment_patient(consent) or row.patient_id
                    if patient and denies_whole_record(consent, now):
                        denied.add(patient)
                if len(rows) < _PAGE:
                    break
                after = rows[-1].id
        return frozenset(denied)
