"""phi-service tables: current resources and every version (bodies encrypted)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from medmesh.platform.db import UTCDateTime, new_metadata


class PhiBase(DeclarativeBase):
    metadata = new_metadata()


class ResourceRow(PhiBase):
    """The current version of a resource. ``body`` is the AES-256-GCM envelope of its JSON."""

    __tablename__ = "resources"
    __table_args__ = (
        Index("ix_resources_type_updated", "resource_type", "last_updated", "id"),
        Index("ix_resources_patient", "patient_id"),
    )

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The patient whose compartment holds this resource (the Patient's own id for a Patient).
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ResourceVersionRow(PhiBase):
    """Every version ever written (history, vread); deletes are versions without a body."""

    __tablename__ = "resource_versions"
    __table_args__ = (Index("ix_resource_versions_updated", "resource_type", "last_updated"),)

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(8))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
