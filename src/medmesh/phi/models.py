"""phi-service tables: current resources and every version (bodies encrypted)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    ScalarSelect,
    String,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from medmesh.platform.db import UTCDateTime, new_metadata


class PhiBase(DeclarativeBase):
    metadata = new_metadata()


class ResourceRow(PhiBase):
    """The current version of a resource. ``body`` (the AES-256-GCM envelope of its JSON) is read
    from the version's row: each body is stored once (docs/decisions/0051-phi-bodies-stored-once.md)."""

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
    if TYPE_CHECKING:
        #: The current version's body (mapped below, once the versions' table exists).
        body: Mapped[bytes | None]


class ResourceVersionRow(PhiBase):
    """Every version ever written (history, vread); deletes are versions without a body."""

    __tablename__ = "resource_versions"
    __table_args__ = (
        # Id first: ids are time-ordered, so a write's versions share the key's right edge.
        PrimaryKeyConstraint("id", "resource_type", "version"),
        Index("ix_resource_versions_updated", "resource_type", "last_updated"),
    )

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(8))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


def current_body(current: Any) -> ScalarSelect[bytes | None]:
    """The body of the version ``current`` (a current row's table or alias) is at."""
    v = ResourceVersionRow.__table__.c
    return (
        select(v.body)
        .where(
            v.resource_type == current.c.resource_type,
            v.id == current.c.id,
            v.version == current.c.version,
        )
        .scalar_subquery()
    )


ResourceRow.body = column_property(current_body(ResourceRow.__table__))
