"""What a load did: patients and resources stored, what was already there, what was refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Failures kept in a summary (the count is always exact).
MAX_REPORTED_FAILURES = 20


@dataclass(frozen=True)
class LoadFailure:
    """Patients ``first``..``last`` (indexes in the run) that the server did not store."""

    first: int
    last: int
    status: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "patients": [self.first, self.last],
            "status": self.status,
            "message": self.message,
        }


@dataclass
class LoadSummary:
    """Counts of one load (progress while it runs, the result when it ends)."""

    patients: int = 0
    patients_loaded: int = 0
    patients_already_present: int = 0
    patients_failed: int = 0
    resources_loaded: int = 0
    directory_resources: int = 0
    directory_resources_present: int = 0
    bundles_posted: int = 0
    retries: int = 0
    seconds: float = 0.0
    failures: list[LoadFailure] = field(default_factory=list)

    @property
    def patients_done(self) -> int:
        """Patients that are in the server now (stored by this load or found there)."""
        return self.patients_loaded + self.patients_already_present

    def add_failure(self, failure: LoadFailure) -> None:
        self.patients_failed += failure.last - failure.first + 1
        if len(self.failures) < MAX_REPORTED_FAILURES:
            self.failures.append(failure)

    def describe_failures(self) -> str:
        """One line for an error message: how many patients failed and the first reason."""
        if not self.patients_failed:
            return ""
        first = self.failures[0]
        status = f"{first.status} " if first.status is not None else ""
        return (
            f"{self.patients_failed} of {self.patients} patients were not stored "
            f"(first: patients {first.first}-{first.last}: {status}{first.message})"
        )

    def to_json(self) -> dict[str, Any]:
        rate = self.patients_loaded / self.seconds if self.seconds > 0 else 0.0
        return {
            "patients": self.patients,
            "patients_loaded": self.patients_loaded,
            "patients_already_present": self.patients_already_present,
            "patients_failed": self.patients_failed,
            "resources_loaded": self.resources_loaded,
            "directory_resources": self.directory_resources,
            "directory_resources_present": self.directory_resources_present,
            "bundles_posted": self.bundles_posted,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "patients_per_second": round(rate, 1),
            "failures": [f.to_json() for f in self.failures],
        }


class LoadCancelled(Exception):
    """The load stopped because it was cancelled; ``summary`` says how far it got."""

    def __init__(self, summary: LoadSummary) -> None:
        super().__init__("the load was cancelled")
        self.summary = summary


class LoadRefused(Exception):
    """The server or the token endpoint refused the load as a whole (credentials, scopes, URL).

    The message is user-facing: it names the status and the server's reason, never a secret.
    """

    def __init__(self, message: str, summary: LoadSummary) -> None:
        super().__init__(message)
        self.message = message
        self.summary = summary

    def __repr__(self) -> str:
        return f"LoadRefused({self.message!r})"
