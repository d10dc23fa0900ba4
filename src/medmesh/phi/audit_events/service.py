"""Searching the phi-service audit trail and shaping it as FHIR AuditEvents.

The trail is the platform's hash-chained ``audit_log`` (on SQLite a sibling
``<db>-audit.db``), read through :func:`medmesh.platform.audit.reading.list_records`.
Results come oldest first and page by keyset on the record's ``seq`` (``_cursor``),
so a page link stays right while new records are appended.

Reading the audit trail is not itself audited: every read would append records to
the very trail being paged, and the trail's own integrity is checked by
``medmesh audit verify phi`` instead. Who may read it is decided by the ``audit:read``
scope.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from medmesh.phi.audit_events.params import AuditQuery
from medmesh.phi.audit_events.rendering import audit_event
from medmesh.platform.audit import AuditEntry, list_records
from medmesh.platform.db import Database


async def find_records(database: Database, query: AuditQuery) -> list[AuditEntry]:
    """The records matching ``query``, at most ``query.count``, oldest first after the cursor."""
    if query.actions is not None and not query.actions:
        return []
    filters: dict[str, Any] = {
        "patient": query.patient,
        "actor": query.agent,
        "since": query.since,
        "until": query.until,
        "after_seq": query.after_seq,
        "limit": query.count,
    }
    if query.actions is None:
        return await list_records(database, **filters)
    # One indexed query per action, merged: the first ``count`` by seq are the page.
    found: list[AuditEntry] = []
    for action in sorted(query.actions):
        found.extend(await list_records(database, action=action, **filters))
    found.sort(key=lambda entry: entry.seq)
    return found[: query.count]


async def find_record(database: Database, seq: int) -> AuditEntry | None:
    """The record with this ``seq``, if any."""
    found = await list_records(database, after_seq=seq - 1, limit=1)
    return found[0] if found and found[0].seq == seq else None


def searchset(entries: list[AuditEntry], query: AuditQuery, base_url: str) -> dict[str, Any]:
    """The searchset Bundle of one page, with ``self`` and (when the page is full) ``next``."""

    def link(cursor: int | None) -> str:
        params = [(name, value) for name, value in query.echo if name != "_cursor"]
        if ("_count", str(query.count)) not in params:
            params = [(n, v) for n, v in params if n != "_count"] + [("_count", str(query.count))]
        if cursor is not None:
            params.append(("_cursor", str(cursor)))
        return f"{base_url}/AuditEvent?{urlencode(params)}"

    links = [{"relation": "self", "url": link(query.after_seq)}]
    if len(entries) == query.count:
        links.append({"relation": "next", "url": link(entries[-1].seq)})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base_url}/AuditEvent/{entry.seq}",
                "resource": audit_event(entry),
                "search": {"mode": "match"},
            }
            for entry in entries
        ],
    }
