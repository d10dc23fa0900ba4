"""Posting patients' transaction Bundles to a FHIR server (phi-service) without duplicates.

The directory Bundle (PUTs with fixed ids: repeating it changes nothing) goes first, then
patients in packed transaction Bundles, ``concurrency`` at a time. A connection error, a 5xx or
a 429 is retried with exponential backoff. After an attempt whose outcome is unknown (the
request may have been committed before the answer was lost) the loader first asks the server
for those patients' MRNs (``Patient?identifier=system|value,...``) and posts only the ones it
lacks. A Bundle the server refuses as invalid (4xx) is split and its patients posted one by one,
so one bad patient costs only itself; it is counted and described in the summary.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

from medmesh.platform.logging import get_logger
from medmesh.platform.service_client import PeerUnavailable, ServiceClient
from medmesh.synthetic.loading.batches import (
    PackedBundle,
    medical_record_number,
    pack,
    parse_patient_bundle,
)
from medmesh.synthetic.loading.bulk_import import NdjsonInput, offers_import, run_import
from medmesh.synthetic.loading.posting import (
    FHIR_JSON,
    REFUSING_STATUSES,
    Attempt,
    fhir_message,
    post_bundle,
)
from medmesh.synthetic.loading.summary import LoadCancelled, LoadFailure, LoadRefused, LoadSummary
from medmesh.synthetic.loading.target import LoadSettings, PhiTarget

log = get_logger("medmesh.synthetic.loading")

#: Directory ids asked for per ``_id`` search (they go in the URL).
ID_SEARCH_CHUNK = 50

ProgressCallback = Callable[[int], None]
CancelCheck = Callable[[], bool]


def _reference(entry: dict[str, Any]) -> str:
    return f"{entry['resource']['resourceType']}/{entry['resource']['id']}"


def _escape(token_part: str) -> str:
    return "".join("\\" + ch if ch in ",|$\\" else ch for ch in token_part)


def _identifier_token(mrn: str) -> str:
    system, _, value = mrn.partition("|")
    return f"{_escape(system)}|{_escape(value)}"


class PhiLoader:
    """Loads patients' transaction Bundles into one FHIR server; build one per load."""

    def __init__(
        self,
        target: PhiTarget,
        settings: LoadSettings | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        is_cancelled: CancelCheck | None = None,
    ) -> None:
        self.target = target
        self.settings = settings or LoadSettings()
        self._on_progress = on_progress
        self._is_cancelled = is_cancelled or (lambda: False)
        self.summary = LoadSummary()

    def _client(self) -> ServiceClient:
        target = self.target
        if target.access_token:
            return ServiceClient(
                target.fhir_url,
                timeout=self.settings.timeout_seconds,
                headers={"Authorization": f"Bearer {target.access_token}"},
            )
        return ServiceClient(
            target.fhir_url,
            token_url=target.token_url,
            client_id=target.client_id,
            client_secret=target.client_secret,
            scope=target.scope or None,
            timeout=self.settings.timeout_seconds,
        )

    async def load(
        self,
        directory: dict[str, Any] | None,
        patient_bundles: Iterable[bytes | dict[str, Any]],
        *,
        first_index: int = 0,
        skip_existing: bool = False,
    ) -> LoadSummary:
        """Post ``directory`` (a transaction Bundle of PUTs, or None) then every patient Bundle.

        ``first_index`` is the run index of the first patient (for the summary). With
        ``skip_existing`` every patient whose MRN the server already has is left out (running
        the same load twice stores nothing new). Raises :class:`LoadRefused` when the server
        refuses the credentials or the directory, :class:`LoadCancelled` when cancelled.
        """
        started = time.monotonic()
        summary = self.summary
        try:
            async with self._client() as http:
                await self._preflight(http)
                if directory is not None and directory.get("entry"):
                    await self._store_directory(http, directory, skip_existing)
                await self._load_patients(http, patient_bundles, first_index, skip_existing)
        finally:
            summary.seconds = time.monotonic() - started
        if self._is_cancelled():
            raise LoadCancelled(summary)
        log.info(
            "load_finished",
            patients=summary.patients,
            loaded=summary.patients_loaded,
            present=summary.patients_already_present,
            failed=summary.patients_failed,
            resources=summary.resources_loaded,
            seconds=round(summary.seconds, 3),
        )
        return summary

    async def import_ndjson(self, inputs: Sequence[NdjsonInput]) -> LoadSummary | None:
        """Load NDJSON files with the server's ``$import`` (it fetches ``inputs`` itself);
        None, with nothing sent but the capability probe, when the server does not offer it."""
        started = time.monotonic()
        summary = self.summary
        try:
            async with self._client() as http:
                if not await offers_import(http):
                    return None
                await self._preflight(http)
                await run_import(http, inputs, summary, is_cancelled=self._is_cancelled)
        finally:
            summary.seconds = time.monotonic() - started
        if self._on_progress is not None:
            self._on_progress(summary.patients_done)
        log.info(
            "import_finished",
            patients=summary.patients,
            loaded=summary.patients_loaded,
            failed=summary.patients_failed,
            resources=summary.resources_loaded,
            seconds=round(summary.seconds, 3),
        )
        return summary

    # --- the pipeline: packing in a thread, posting from several tasks ---------------------

    async def _load_patients(
        self,
        http: ServiceClient,
        patient_bundles: Iterable[bytes | dict[str, Any]],
        first_index: int,
        skip_existing: bool,
    ) -> None:
        settings = self.settings
        parsed = (
            parse_patient_bundle(first_index + offset, body)
            for offset, body in enumerate(patient_bundles)
        )
        packed = pack(parsed, settings.batch_size, settings.max_entries)
        queue: asyncio.Queue[PackedBundle | None] = asyncio.Queue(maxsize=settings.concurrency * 2)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._produce(packed, queue))
                for _ in range(settings.concurrency):
                    group.create_task(self._consume(http, queue, skip_existing))
        except BaseExceptionGroup as group_error:
            errors: list[BaseException] = list(group_error.exceptions)
            refused = [e for e in errors if isinstance(e, LoadRefused)]
            raise (refused or errors)[0] from None

    async def _produce(
        self, packed: Iterator[PackedBundle], queue: asyncio.Queue[PackedBundle | None]
    ) -> None:
        try:
            while not self._is_cancelled():
                # Generating and parsing patients is CPU work: off the event loop, which keeps
                # the requests in flight moving meanwhile.
                batch = await asyncio.to_thread(next, packed, None)
                if batch is None:
                    break
                self.summary.patients += len(batch.patients)
                await queue.put(batch)
        finally:
            for _ in range(self.settings.concurrency):
                await queue.put(None)

    async def _consume(
        self, http: ServiceClient, queue: asyncio.Queue[PackedBundle | None], skip_existing: bool
    ) -> None:
        while (batch := await queue.get()) is not None:
            if self._is_cancelled():
                continue
            remaining: PackedBundle | None = batch
            if skip_existing:
                remaining = await self._without_present(http, batch)
            if remaining is not None:
                await self._store(http, remaining)
            self._report()

    def _report(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.summary.patients_done)

    # --- one Bundle ---------------------------------------------------------------------

    async def _store(self, http: ServiceClient, batch: PackedBundle) -> None:
        summary = self.summary
        attempts = 0
        unsure = False
        last = Attempt()
        while True:
            if unsure:
                present = await self._present(http, batch)
                if present is None:
                    last = Attempt(retry=True, message="could not check what was stored")
                else:
                    summary.patients_already_present += len(present)
                    remaining = batch.without(present)
                    if remaining is None:
                        return
                    batch, unsure = remaining, False
            if not unsure:
                last = await post_bundle(http, batch.body())
                if last.stored:
                    summary.patients_loaded += len(batch.patients)
                    summary.resources_loaded += batch.resource_count
                    summary.bundles_posted += 1
                    return
                if not last.retry:
                    await self._refused_bundle(http, batch, last)
                    return
                unsure = last.maybe_stored
            attempts += 1
            if attempts > self.settings.retries or self._is_cancelled():
                reason = f"gave up after {attempts} attempts: {last.message}"
                summary.add_failure(LoadFailure(batch.first, batch.last, last.status, reason))
                return
            summary.retries += 1
            await asyncio.sleep(self._delay(attempts, last.retry_after))

    async def _refused_bundle(
        self, http: ServiceClient, batch: PackedBundle, attempt: Attempt
    ) -> None:
        if attempt.status in REFUSING_STATUSES:
            raise LoadRefused(
                f"{self.target.fhir_url} refused the load: {attempt.status} {attempt.message}",
                self.summary,
            )
        if len(batch.patients) > 1:
            # Find the patient the server objects to: the others go in on their own.
            for single in batch.singles():
                await self._store(http, single)
            return
        self.summary.add_failure(
            LoadFailure(batch.first, batch.last, attempt.status, attempt.message)
        )

    async def _present(self, http: ServiceClient, batch: PackedBundle) -> set[int] | None:
        """Indexes of the batch's patients whose MRN the server has; None when it cannot tell."""
        wanted = {p.mrn: p.index for p in batch.patients if p.mrn is not None}
        if not wanted:
            return set()
        params = {
            "identifier": ",".join(_identifier_token(mrn) for mrn in wanted),
            "_count": str(len(wanted) * 2),
        }
        try:
            response = await http.get("Patient", params=params, headers={"Accept": FHIR_JSON})
        except PeerUnavailable:
            return None
        if response.status_code != 200:
            return None
        found: set[int] = set()
        for entry in response.json().get("entry", []):
            mrn = medical_record_number(entry.get("resource", {}))
            if mrn in wanted:
                found.add(wanted[mrn])
        return found

    async def _without_present(
        self, http: ServiceClient, batch: PackedBundle
    ) -> PackedBundle | None:
        present = await self._present(http, batch)
        if not present:
            return batch
        self.summary.patients_already_present += len(present)
        return batch.without(present)

    # --- before the patients --------------------------------------------------------------

    async def _preflight(self, http: ServiceClient) -> None:
        """One authorised search: fails fast on a wrong URL, bad credentials or missing scopes."""
        try:
            response = await http.get(
                "Patient", params={"_summary": "count"}, headers={"Accept": FHIR_JSON}
            )
        except PeerUnavailable as exc:
            raise LoadRefused(
                f"cannot load into {self.target.fhir_url}: {exc.message}", self.summary
            ) from None
        if response.status_code != 200:
            raise LoadRefused(
                f"{self.target.fhir_url} refused the load: {response.status_code} "
                f"{fhir_message(response)}",
                self.summary,
            )

    async def _store_directory(
        self, http: ServiceClient, directory: dict[str, Any], skip_existing: bool
    ) -> None:
        entries: list[dict[str, Any]] = directory.get("entry", [])
        if skip_existing:
            # A PUT of an unchanged resource still makes a new version: leave out what is there.
            present = await self._present_ids(http, entries)
            entries = [e for e in entries if _reference(e) not in present]
            self.summary.directory_resources_present = len(present)
            if not entries:
                return
        body = orjson.dumps({**directory, "entry": entries})
        attempts = 0
        while True:
            attempt = await post_bundle(http, body)
            if attempt.stored:
                self.summary.directory_resources = len(entries)
                return
            attempts += 1
            if not attempt.retry or attempts > self.settings.retries:
                raise LoadRefused(
                    f"{self.target.fhir_url} did not store the directory (organizations, "
                    f"practitioners, locations): {attempt.status or ''} {attempt.message}".strip(),
                    self.summary,
                )
            self.summary.retries += 1
            await asyncio.sleep(self._delay(attempts, attempt.retry_after))

    async def _present_ids(self, http: ServiceClient, entries: list[dict[str, Any]]) -> set[str]:
        """``Type/id`` of the directory resources the server has (``_id`` searches by type)."""
        by_type: dict[str, list[str]] = {}
        for entry in entries:
            resource = entry["resource"]
            by_type.setdefault(resource["resourceType"], []).append(resource["id"])
        present: set[str] = set()
        for resource_type, ids in by_type.items():
            for start in range(0, len(ids), ID_SEARCH_CHUNK):
                chunk = ids[start : start + ID_SEARCH_CHUNK]
                params = {"_id": ",".join(chunk), "_count": str(len(chunk))}
                try:
                    found = await http.get(
                        resource_type, params=params, headers={"Accept": FHIR_JSON}
                    )
                except PeerUnavailable:
                    return present  # unknown: PUT them again, which is harmless
                if found.status_code != 200:
                    return present
                for hit in found.json().get("entry", []):
                    present.add(f"{resource_type}/{hit['resource']['id']}")
        return present

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        delay: float = self.settings.backoff_seconds * 2 ** (attempt - 1)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
