"""synthetic-phi-service tables: generation jobs (their output files live on disk)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from medmesh.platform.db import UTCDateTime, new_metadata


class SyntheticBase(DeclarativeBase):
    metadata = new_metadata()


class JobRow(SyntheticBase):
    """One generation job: what was asked, where it stands, and what it produced.

    ``status`` goes queued -> running -> succeeded | failed | cancelled and never back.
    ``worker`` and ``heartbeat_at`` name the replica running it and when it last reported,
    so a job whose replica died is failed instead of being reported running forever.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_owner_created", "owner", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    phase_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: GenerationOptions.to_json() (seed, size, reference date ...).
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    formats: Mapped[list[str]] = mapped_column(JSON)
    target: Mapped[str | None] = mapped_column(String(16), nullable=True)
    skip_existing: Mapped[bool] = mapped_column(Boolean, default=False)
    workers: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    generated: Mapped[int] = mapped_column(Integer, default=0)
    loaded: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    #: Summary of the finished run's manifest: counts per resource type, files, bytes.
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: The phi load's summary (patients and resources loaded, failures).
    load_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
