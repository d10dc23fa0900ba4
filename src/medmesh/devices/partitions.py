"""The monthly partitions of ``readings`` on PostgreSQL (SQLite keeps one plain table).

``readings`` is partitioned by range of ``ts``: one partition a month from January 2000
(``readings_2026_12`` holds December 2026, UTC), and ``readings_before_2000`` for anything older
(a device whose clock was reset to 1970), so no timestamp makes more than one partition a month
since 2000. Migration 0003 makes the partitions of the rows it moves; after it, the transaction
that stores the first reading of a month makes that month's partition
(:meth:`ReadingPartitions.ensure`), so no reading is refused for want of one. There is no
DEFAULT partition (docs/decisions/0038-devices-readings-partitioned-by-month.md says why).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PARENT = "readings"
#: Monthly partitions start in January of this year; older readings share one partition.
FIRST_YEAR = 2000
BEFORE_FIRST_MONTH = f"readings_before_{FIRST_YEAR}"
_MONTHLY = re.compile(r"readings_\d{4}_\d{2}")
#: The transaction-scoped advisory lock that makers of partitions take, one at a time.
LOCK_KEY = 0x6D65_646D_6573_6801  # "medmesh" in ASCII, then 1


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month of UTC, the range of one partition."""

    year: int
    month: int

    @classmethod
    def of(cls, ts: datetime) -> Month:
        utc = ts.astimezone(UTC)
        return cls(utc.year, utc.month)

    @classmethod
    def of_name(cls, name: str) -> Month | None:
        """The month of the monthly partition ``name`` (None for any other table)."""
        if _MONTHLY.fullmatch(name) is None:
            return None
        return cls(int(name[-7:-3]), int(name[-2:]))

    @property
    def name(self) -> str:
        return f"{PARENT}_{self.year:04d}_{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        if self.month == 12:
            return datetime(self.year + 1, 1, 1, tzinfo=UTC)
        return datetime(self.year, self.month + 1, 1, tzinfo=UTC)


def is_partition(table_name: str) -> bool:
    """Whether ``table_name`` is one of the partitions (not a table of the models)."""
    return table_name == BEFORE_FIRST_MONTH or _MONTHLY.fullmatch(table_name) is not None


def _literal(ts: datetime) -> str:
    # A timestamptz literal with its offset, so the bound never depends on the session's zone.
    return f"'{ts.isoformat(sep=' ')}'"


#: The names of the partitions of ``readings`` (``AND`` more conditions on ``c.relname``).
_PARTITION_NAMES = (
    "SELECT c.relname FROM pg_catalog.pg_inherits i"
    " JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'readings'::regclass"
)


class ReadingPartitions:
    """The partitions of ``readings``, made and dropped in the session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure(self, timestamps: Iterable[datetime]) -> list[str]:
        """Make the missing monthly partitions for readings at ``timestamps``; their names.

        When every month is there this costs one catalog query. A missing month is made
        under an advisory lock held until the transaction ends: a second transaction missing it
        waits, then finds it made (two ``CREATE TABLE IF NOT EXISTS`` racing, the second fails
        with "already exists"). ``CREATE TABLE`` then ``ATTACH PARTITION`` locks ``readings``
        in SHARE UPDATE EXCLUSIVE mode, which lets other transactions read and insert;
        ``CREATE TABLE … PARTITION OF`` would hold ACCESS EXCLUSIVE until this commit.
        """
        months = sorted({m for m in map(Month.of, timestamps) if m.year >= FIRST_YEAR})
        missing = await self._missing(months)
        if not missing:
            return []
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        made = await self._missing(missing)
        for month in made:
            await self.session.execute(text(f"CREATE TABLE {month.name} (LIKE {PARENT})"))
            await self.session.execute(
                text(
                    f"ALTER TABLE {PARENT} ATTACH PARTITION {month.name} "
                    f"FOR VALUES FROM ({_literal(month.start)}) TO ({_literal(month.end)})"
                )
            )
        return [month.name for month in made]

    async def _missing(self, months: list[Month]) -> list[Month]:
        if not months:
            return []
        present = await self.session.scalars(
            text(_PARTITION_NAMES + " AND c.relname = ANY(:names)"),
            {"names": [month.name for month in months]},
        )
        found = set(present.all())
        return [month for month in months if month.name not in found]

    async def months(self) -> list[Month]:
        """The months that have a partition, oldest first."""
        names = await self.session.scalars(text(_PARTITION_NAMES))
        return sorted(month for month in map(Month.of_name, names) if month is not None)

    async def drop(self, month: Month) -> bool:
        """Detach and drop ``month``'s partition; False when it is not there (another
        transaction dropped it). Under the partition makers' advisory lock, so no batch makes
        the month meanwhile and two replicas drop it once."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        there = await self.session.scalar(text("SELECT to_regclass(:name)"), {"name": month.name})
        if there is None:
            return False
        await self.session.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {month.name}"))
        await self.session.execute(text(f"DROP TABLE {month.name}"))
        return True
