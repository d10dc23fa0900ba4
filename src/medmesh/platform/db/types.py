"""The declarative base, naming convention and column types every service's tables use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the platform's own tables (audit log, outbox)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_metadata() -> MetaData:
    """A MetaData with the project's constraint naming convention, for a service's tables."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: medmesh stores timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Any) -> Any:
        """On SQLite, one function from the datetime to its stored text (:func:`utc_bind_text`)
        instead of this type's conversion followed by SQLite ``DATETIME``'s formatting."""
        if dialect.name == "sqlite":
            return utc_bind_text
        return super().bind_processor(dialect)


def sqlite_datetime_text(value: datetime) -> str:
    """The text :class:`UTCDateTime` stores on SQLite for ``value`` (its UTC time in
    SQLAlchemy's SQLite ``DATETIME`` format), without the two processors' calls;
    ``tests/platform/test_fast_insert_new.py`` compares it with them."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: medmesh stores timezone-aware UTC only")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  (twice as fast as format)
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def json_column_text(value: Any) -> str:
    """The text a JSON column stores for ``value`` (every engine's ``json_serializer``): orjson's
    compact encoding, or the standard library's for what orjson refuses (integers beyond 64
    bits, keys that are not strings). Both read back as the same value."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def utc_bind_text(value: datetime | None) -> str | None:
    """:class:`UTCDateTime`'s stored text on SQLite (a null stays null), as the direct writers
    bind it; the text of the last datetime object is reused for it (the rows of one change share
    their time)."""
    global _last_utc
    last = _last_utc
    if value is last[0]:
        return last[1]
    text = None if value is None else sqlite_datetime_text(value)
    _last_utc = (value, text)
    return text


#: The last datetime :func:`utc_bind_text` converted, and its text (replaced as one tuple, so a
#: writer on another thread reads a matching pair).
_last_utc: tuple[datetime | None, str | None] = (None, None)
