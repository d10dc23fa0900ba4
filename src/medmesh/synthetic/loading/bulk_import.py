"""Loading a run's NDJSON files with phi's ``$import``, when phi offers it.

phi pulls the files itself from the URLs listed (its ``MEDMESH_PHI_IMPORT_URL_PREFIXES`` must
cover them) and stores them as a job; the loader kicks the job off, polls it to its report and
turns the report into a :class:`LoadSummary`. Whether phi offers it is read off its
CapabilityStatement (a system-level ``import`` operation). A line that exists already becomes a
new version, never a copy, so a load that is run again adds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from medmesh.platform.service_client import PeerUnavailable, ServiceClient
from medmesh.synthetic.loading.posting import FHIR_JSON, fhir_message, retry_after_seconds
from medmesh.synthetic.loading.summary import LoadCancelled, LoadFailure, LoadRefused, LoadSummary

NDJSON = "application/fhir+ndjson"
#: Seconds between polls when phi's answer names none.
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class NdjsonInput:
    """One file phi is to pull: the type its lines hold and where phi fetches it."""

    resource_type: str
    url: str


async def offers_import(http: ServiceClient) -> bool:
    """Whether the server's CapabilityStatement lists the system-level ``import`` operation."""
    try:
        response = await http.get("metadata", headers={"Accept": FHIR_JSON})
    except PeerUnavailable:
        return False
    if response.status_code != 200:
        return False
    with contextlib.suppress(ValueError):
        statement = response.json()
        if isinstance(statement, dict):
            return any(
                isinstance(operation, dict) and operation.get("name") == "import"
                for rest in statement.get("rest") or []
                if isinstance(rest, dict)
                for operation in rest.get("operation") or []
            )
    return False


def kickoff_body(inputs: Sequence[NdjsonInput]) -> dict[str, Any]:
    """The Bulk Data import kick-off Parameters listing ``inputs``."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "inputFormat", "valueCode": NDJSON},
            *(
                {
                    "name": "input",
                    "part": [
                        {"name": "type", "valueCode": i.resource_type},
                        {"name": "url", "valueUri": i.url},
                    ],
                }
                for i in inputs
            ),
        ],
    }


async def run_import(
    http: ServiceClient,
    inputs: Sequence[NdjsonInput],
    summary: LoadSummary,
    *,
    is_cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Kick off ``$import`` of ``inputs``, wait for its report and count it into ``summary``.

    Raises :class:`LoadRefused` when phi refuses the kick-off or the job fails, and
    :class:`LoadCancelled` when cancelled while it runs (the job itself goes on in phi: what it
    stores is kept, and running the load again makes new versions, not copies).
    """
    try:
        response = await http.post(
            "$import",
            json=kickoff_body(inputs),
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "respond-async"},
        )
    except PeerUnavailable as exc:
        raise LoadRefused(f"the $import kick-off failed: {exc.message}", summary) from None
    if response.status_code != 202 or "content-location" not in response.headers:
        raise LoadRefused(
            f"the $import kick-off was refused: {response.status_code} {fhir_message(response)}",
            summary,
        )
    status_url = response.headers["content-location"]
    while True:
        if is_cancelled():
            raise LoadCancelled(summary)
        polled = await http.get(status_url, headers={"Accept": FHIR_JSON})
        if polled.status_code != 202:
            break
        await asyncio.sleep(retry_after_seconds(polled) or POLL_SECONDS)
    if polled.status_code != 200:
        raise LoadRefused(
            f"the $import job failed: {polled.status_code} {fhir_message(polled)}", summary
        )
    report = polled.json()
    count_report(report, summary)
    if report.get("status") == "failed":
        errors = (report.get("outcome") or {}).get("issue") or [{}]
        raise LoadRefused(
            f"the $import job failed: {errors[0].get('diagnostics', 'no reason given')}", summary
        )


def count_report(report: dict[str, Any], summary: LoadSummary) -> None:
    """The counts of an ``$import`` report into ``summary``: Patients are the patients, every
    line stored a resource; a rejected Patient line is a failed patient (its index is its line
    number less one, the order synthetic writes them in)."""
    outputs = report.get("output") or []
    for output in outputs:
        count = int(output.get("count") or 0)
        summary.resources_loaded += count
        if output.get("type") == "Patient":
            summary.patients += int(output.get("lines") or 0)
            summary.patients_loaded += count
    for issue in (report.get("outcome") or {}).get("issue") or []:
        text = str(issue.get("diagnostics") or issue.get("code") or "")
        name, _, rest = text.partition(" line ")
        number = rest.split(":", 1)[0]
        if name.rsplit("/", 1)[-1].startswith("Patient") and number.isdigit():
            index = int(number) - 1
            summary.add_failure(LoadFailure(index, index, 400, text.partition(": ")[2]))
