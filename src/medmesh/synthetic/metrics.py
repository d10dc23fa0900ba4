"""synthetic-phi-service domain metrics (registered on the app's registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from medmesh.platform.metrics import ServiceMetrics

JOB_STATUSES = ("succeeded", "failed", "cancelled")
#: A job runs for seconds (a few hundred patients) to hours (millions).
JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


@dataclass(frozen=True)
class SyntheticMetrics:
    patients_generated: Counter
    patients_loaded: Counter
    jobs_finished: Counter
    jobs_running: Gauge
    jobs_queued: Gauge
    job_duration: Histogram

    @classmethod
    def register(cls, metrics: ServiceMetrics) -> SyntheticMetrics:
        generated = metrics.counter(
            "medmesh_synthetic_patients_generated_total",
            "Synthetic patients generated, by how they were asked for (sync or job).",
            ("mode",),
        )
        loaded = metrics.counter(
            "medmesh_synthetic_patients_loaded_total",
            "Synthetic patients stored in phi-service by jobs with target phi.",
        )
        finished = metrics.counter(
            "medmesh_synthetic_jobs_finished_total", "Jobs that ended, by status.", ("status",)
        )
        running = metrics.gauge(
            "medmesh_synthetic_jobs_running", "Jobs this replica is running now."
        )
        queued = metrics.gauge(
            "medmesh_synthetic_jobs_queued", "Jobs waiting for a worker (all replicas)."
        )
        duration = metrics.histogram(
            "medmesh_synthetic_job_duration_seconds",
            "Time from a job's start to its end, by status.",
            ("status",),
            buckets=JOB_DURATION_BUCKETS,
        )
        for mode in ("sync", "job"):
            generated.labels(mode)
        for status in JOB_STATUSES:
            finished.labels(status)
            duration.labels(status)
        return cls(generated, loaded, finished, running, queued, duration)
