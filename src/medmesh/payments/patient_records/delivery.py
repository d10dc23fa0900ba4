"""The outbox ``deliver`` of phi records: with the gateway's own token (client credentials
from auth-service, through :class:`~medmesh.platform.service_client.ServiceClient`), it reads
``PaymentReconciliation/<id>`` and creates it with that id (FHIR's create-on-update) only when
phi has none — a delivery repeated after a lost answer finds the record and stores nothing. A
record deleted in phi (410) is not made again. Any other answer is retried with the outbox's
backoff while phi is down or refuses."""

from __future__ import annotations

import orjson

from medmesh.platform.outbox import Deliver, OutboxMessage
from medmesh.platform.service_client import ServiceClient

_FHIR_JSON = "application/fhir+json"


class RecordRefused(Exception):
    """phi answered a record with an unexpected status (retried by the outbox)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"phi answered {status}")
        self.status = status

    def __repr__(self) -> str:
        return f"RecordRefused(status={self.status})"


def phi_delivery(phi: ServiceClient) -> Deliver:
    """Write ``message.payload`` to ``<phi>/fhir/<message.destination>`` unless it is there."""

    async def deliver(message: OutboxMessage) -> None:
        found = await phi.get(message.destination, headers={"Accept": _FHIR_JSON})
        if found.status_code in (200, 410):
            return
        if found.status_code != 404:
            raise RecordRefused(found.status_code)
        made = await phi.put(
            message.destination,
            content=orjson.dumps(message.payload),
            headers={"Content-Type": _FHIR_JSON, "Accept": _FHIR_JSON},
        )
        if made.status_code not in (200, 201):
            raise RecordRefused(made.status_code)

    return deliver
