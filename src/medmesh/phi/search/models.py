"""Search index tables: one row per (resource, parameter, value), rewritten with every version.

Blind-indexed parameters (names, identifiers, telecom, addresses) hold keyed HMAC tokens only,
never the value. Each table's primary key starts with the resource, id first (ids are
time-ordered, so a write's rows share the right edge of the key: migration 0009), which serves
rewrites and ``_include``; a second index starts with ``(resource_type, param, value)`` and ends
with the resource id, so a search reads matching ids in id order straight from the index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, PrimaryKeyConstraint, String, text, true
from sqlalchemy.orm import Mapped, mapped_column

from medmesh.phi.models import PhiBase
from medmesh.platform.db import UTCDateTime

#: Longest stored token/code/system value; longer values are cut (and so are queries).
VALUE_LENGTH = 255
#: On SQLite the primary key is the table (migration 0003): two B-trees a row, not three.
WITHOUT_ROWID = {"sqlite_with_rowid": False}


class StringIndexRow(PhiBase):
    """Blind-index tokens of a string parameter: one per prefix of each value, plus the whole value.

    Only the ``indexed`` rows (prefixes of at most ``LOOKUP_PREFIX`` characters,
    :mod:`medmesh.phi.search.extract`) are in the lookup index; a longer prefix or a whole value
    is found through its short prefix and then checked in the resource's own rows (the primary
    key), so a new resource adds few entries at random places of the lookup index.
    """

    __tablename__ = "search_strings"
    __table_args__ = (
        PrimaryKeyConstraint("resource_id", "resource_type", "param", "token"),
        Index(
            "ix_search_strings_lookup",
            "resource_type",
            "param",
            "token",
            "resource_id",
            "indexed",  # covers the condition, so SQLite reads the index alone
            sqlite_where=text("indexed = 1"),
            postgresql_where=text("indexed"),
        ),
        WITHOUT_ROWID,
    )

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    param: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Whether the row is in the lookup index.
    indexed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class TokenIndexRow(PhiBase):
    """A coded value: ``system`` ('' when none) and ``code`` (a blind token when the parameter is PHI)."""

    __tablename__ = "search_tokens"
    __table_args__ = (
        PrimaryKeyConstraint("resource_id", "resource_type", "param", "system", "code"),
        Index("ix_search_tokens_lookup", "resource_type", "param", "code", "system", "resource_id"),
        WITHOUT_ROWID,
    )

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    param: Mapped[str] = mapped_column(String(64), primary_key=True)
    system: Mapped[str] = mapped_column(String(VALUE_LENGTH), primary_key=True)
    code: Mapped[str] = mapped_column(String(VALUE_LENGTH), primary_key=True)


class DateIndexRow(PhiBase):
    """A date, dateTime, instant or Period as the UTC range ``[low, high)`` it covers."""

    __tablename__ = "search_dates"
    __table_args__ = (
        PrimaryKeyConstraint("resource_id", "resource_type", "param", "low", "high"),
        Index("ix_search_dates_low", "resource_type", "param", "low", "resource_id"),
        Index("ix_search_dates_high", "resource_type", "param", "high", "resource_id"),
        WITHOUT_ROWID,
    )

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    param: Mapped[str] = mapped_column(String(64), primary_key=True)
    low: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    high: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


class ReferenceIndexRow(PhiBase):
    """A literal reference ``target_type/target_id`` of a reference parameter."""

    __tablename__ = "search_references"
    __table_args__ = (
        PrimaryKeyConstraint("resource_id", "resource_type", "param", "target_type", "target_id"),
        Index(
            "ix_search_references_lookup",
            "resource_type",
            "param",
            "target_id",
            "target_type",
            "resource_id",
        ),
        WITHOUT_ROWID,
    )

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    param: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)


INDEX_TABLES = (StringIndexRow, TokenIndexRow, DateIndexRow, ReferenceIndexRow)
