"""Keyset paging: a page is the rows strictly after the last key of the page before, in key
order, so paging stays right while rows are added or removed (no offsets).

:func:`keyset_page` narrows and orders a query; :data:`KeysetQuery` is the ``after`` and
``limit`` of a JSON list endpoint, and :func:`next_after` the key its next page starts after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, Select, literal, tuple_
from sqlalchemy.orm import QueryableAttribute

__all__ = ["Keyset", "KeysetQuery", "after_keys", "keyset_page", "next_after"]

T = TypeVar("T", bound=tuple[Any, ...])
R = TypeVar("R")
#: A sort key: a mapped column or a column expression.
Key = QueryableAttribute[Any] | ColumnElement[Any]


def after_keys(
    keys: Sequence[Key], position: Sequence[Any], *, descending: bool = False
) -> ColumnElement[bool]:
    """Rows strictly after ``position`` in the order of ``keys`` (all ascending, or all
    descending): one row-value comparison, which an index on the keys serves."""
    if len(keys) == 1:
        key, value = keys[0], position[0]
        single: ColumnElement[bool] = key < value if descending else key > value
        return single
    row = tuple_(*keys)
    at = tuple_(*(literal(value, key.type) for key, value in zip(keys, position, strict=True)))
    return row < at if descending else row > at


def keyset_page(
    stmt: Select[T],
    keys: Sequence[Key],
    after: Sequence[Any] | None,
    limit: int,
    *,
    descending: bool = False,
) -> Select[T]:
    """``stmt`` ordered by ``keys``, from just after ``after`` (None: the first page), at most
    ``limit`` rows."""
    if after is not None:
        stmt = stmt.where(after_keys(keys, after, descending=descending))
    order = [key.desc() for key in keys] if descending else list(keys)
    return stmt.order_by(*order).limit(limit)


@dataclass(frozen=True, slots=True)
class Keyset:
    """The page a list request asks for: the key it starts after, and its size."""

    after: str | None
    limit: int


def _keyset(
    after: str | None = Query(
        default=None, max_length=64, description="the `next_after` of the previous page"
    ),
    limit: int = Query(default=50, ge=1, le=500),
) -> Keyset:
    return Keyset(after, limit)


#: ``after`` and ``limit`` of a list endpoint.
KeysetQuery = Annotated[Keyset, Depends(_keyset)]


def next_after(rows: Sequence[R], limit: int, key: Callable[[R], str]) -> str | None:
    """The key the next page starts after; None when this page is the last (not full)."""
    return key(rows[-1]) if rows and len(rows) == limit else None
