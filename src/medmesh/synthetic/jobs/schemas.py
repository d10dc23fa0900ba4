"""Job requests and the job as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt

from medmesh.synthetic.options import GenerationRequest

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobFormat = Literal["ndjson", "bundle", "csv"]


def _ndjson_only() -> list[JobFormat]:
    return ["ndjson"]


class JobCreate(GenerationRequest):
    """A run too large to answer synchronously: written to files, loaded into phi, or both."""

    formats: list[JobFormat] = Field(
        default_factory=_ndjson_only,
        max_length=3,
        description="files to write: ndjson (Bulk Data layout), bundle (a transaction Bundle "
        "per patient) and csv (Synthea-like tables); [] with target phi writes no files",
    )
    target: Literal["phi"] | None = Field(
        default=None, description="phi: load every patient into phi-service as the job runs"
    )
    skip_existing: bool = Field(
        default=False,
        description="with target phi: leave out patients whose MRN phi already has "
        "(loading the same run twice stores nothing new)",
    )
    workers: StrictInt | None = Field(
        default=None, ge=1, description="generator processes (default 1; the service caps it)"
    )


class JobProgress(BaseModel):
    total: int = Field(description="patients in the run")
    generated: int = Field(description="patients written to files")
    loaded: int = Field(description="patients in phi-service (target phi)")
    patients_per_second: float | None = Field(description="in the current phase")
    eta_seconds: float | None = Field(description="until the current phase ends")


class OutputFile(BaseModel):
    name: str = Field(description="the path inside the job's output, e.g. ndjson/Patient.ndjson")
    format: str
    type: str = Field(description="the resource type (or table) the file holds")
    count: int = Field(description="resources, rows or Bundles in the file")
    bytes: int
    sha256: str
    url: str = Field(description="where to download it")


class JobOutput(BaseModel):
    patients: int
    resources: int
    counts: dict[str, int] = Field(description="resources per type")
    generator_version: str
    manifest_url: str = Field(description="manifest.json: options, counts, every checksum")
    realism_url: str
    files: list[OutputFile]
    patient_bundle_url: str | None = Field(
        description="with format bundle: the download URL of patient <index>'s Bundle, where "
        "{index} is the 7-digit index (0000042); fhir/SHA256SUMS holds their checksums"
    )


class JobView(BaseModel):
    id: str
    url: str
    status: JobStatus
    phase: Literal["generating", "loading"] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    seed: int
    options: dict[str, Any] = Field(description="the generator's options, defaults filled in")
    formats: list[str]
    target: str | None
    skip_existing: bool
    workers: int
    progress: JobProgress
    output: JobOutput | None = Field(description="when the job succeeded and wrote files")
    load: dict[str, Any] | None = Field(
        description="with target phi: patients and resources loaded, retries, failures"
    )
    error: str | None


class JobPage(BaseModel):
    data: list[JobView]
    has_more: bool
    next_url: str | None = Field(description="the next (older) page")
