"""Stripe's list paging over time-ordered ids: newest first, ``starting_after`` an id of the
previous page (older rows follow), ``ending_before`` an id of the next page (newer rows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from medmesh.payments.objects import list_object
from medmesh.platform.paging import keyset_page

T = TypeVar("T", bound=tuple[Any, ...])
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ListPage:
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None

    @classmethod
    def of(cls, params: dict[str, Any]) -> ListPage:
        return cls(
            params.get("limit", 10), params.get("starting_after"), params.get("ending_before")
        )

    def narrow(self, stmt: Select[T], key: InstrumentedAttribute[str]) -> Select[T]:
        """``stmt`` for this page, one row more than ``limit`` (it tells ``has_more``)."""
        if self.ending_before is not None:
            return keyset_page(stmt, [key], (self.ending_before,), self.limit + 1)
        after = (self.starting_after,) if self.starting_after is not None else None
        return keyset_page(stmt, [key], after, self.limit + 1, descending=True)

    def listed(
        self, url: str, fetched: Sequence[R], to_object: Callable[[R], dict[str, Any]]
    ) -> dict[str, Any]:
        """Stripe's list object of the page's rows (``fetched`` by :meth:`narrow`)."""
        rows, has_more = self.rows(fetched)
        return list_object(url, [to_object(row) for row in rows], has_more)

    def rows(self, fetched: Sequence[R]) -> tuple[list[R], bool]:
        """The page's rows newest first, and whether more follow in the paging direction."""
        has_more = len(fetched) > self.limit
        rows = list(fetched[: self.limit])
        if self.ending_before is not None:
            rows.reverse()
        return rows, has_more
