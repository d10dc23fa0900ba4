"""The ``import_jobs`` table: one row an ``$import``, its caller and each input's progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medmesh.phi.models import PhiBase
from medmesh.platform.db import UTCDateTime


class ImportJobRow(PhiBase):
    """An ``$import`` job. ``progress`` is updated in the transaction of each stored chunk."""

    __tablename__ = "import_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``in-progress``, ``completed`` or ``failed`` (an input could not be fetched).
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The caller the job acts as (what a restart needs to go on with its rights).
    subject: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    patient: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Where the kick-off came from, and the base of ``/fhir`` it was sent to.
    ip: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str] = mapped_column(Text)
    #: ``[{"type": ..., "url": ...}]`` as the caller listed them.
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: One :class:`~medmesh.phi.bulk_import.progress.FileProgress` (as JSON) per input.
    progress: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: Issues of inputs that could not be fetched.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
