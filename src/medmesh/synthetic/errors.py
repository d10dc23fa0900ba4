"""The service's expected failures (rendered as problem+json by the platform)."""

from __future__ import annotations

from medmesh.platform.errors import BadRequest, Conflict, NotFound


class InvalidGenerationOptions(BadRequest):
    """Options the generator refuses: an unknown cohort, cohorts larger than the run ..."""

    code = "invalid_options"


class RunTooLarge(BadRequest):
    """A size above what the endpoint serves (the synchronous limit, or the job limit)."""

    code = "size_above_limit"


class JobNotFound(NotFound):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} (or it is not yours)")


class JobAlreadyFinished(Conflict):
    code = "job_finished"


class OutputNotReady(Conflict):
    """The job has no complete output (still running, failed or cancelled)."""

    code = "output_not_ready"


class OutputNotFound(NotFound):
    code = "output_not_found"
