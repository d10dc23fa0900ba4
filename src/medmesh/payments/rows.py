"""New rows written as Core ``INSERT``s in one trip (``platform.db.execute_together``, or a
``write_transaction``).

The domain builds its rows as mapped objects for their names and types, but never adds them to
the session: the ORM's unit of work (identity map, flush planning, a statement each) cost more
than the inserts. :func:`plain_row` builds one without the ORM's change tracking either (a
mapped class's constructor sets each attribute through its instrumentation, many times the cost
of filling its dict; decision 0039). Rows of one table go in one ``executemany``; tables in the
order given, parents first (foreign keys are checked)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert
from sqlalchemy import inspect as inspect_mapper
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ClassManager, configure_mappers
from sqlalchemy.sql.dml import Insert

from medmesh.payments.models import PaymentsBase
from medmesh.platform.db import Statement, execute_together

R = TypeVar("R", bound=PaymentsBase)

#: (attribute, column key, the column's scalar default or None)
_Pairs = tuple[tuple[str, str, Any], ...]
_columns: dict[type[PaymentsBase], tuple[Insert, _Pairs]] = {}
#: Per class: its manager, and its column attributes, None.
_plain: dict[type[PaymentsBase], tuple[ClassManager[Any], dict[str, None]]] = {}


def _shape(kind: type[PaymentsBase]) -> tuple[Insert, _Pairs]:
    """The ``INSERT`` of a mapped class's table (one statement object, so that its compiled
    form is cached) and its columns."""
    shape = _columns.get(kind)
    if shape is None:
        mapper = inspect_mapper(kind)
        pairs = []
        for attr in mapper.column_attrs:
            column = attr.columns[0]
            default = column.default
            scalar = default.arg if default is not None and default.is_scalar else None
            pairs.append((attr.key, column.key, scalar))
        table = mapper.local_table
        assert isinstance(table, Table)
        shape = _columns[kind] = (insert(table), tuple(pairs))
    return shape


def plain_row(kind: type[R], **values: Any) -> R:
    """A ``kind`` holding ``values`` (by attribute name; an attribute not given reads None),
    made without the ORM's change tracking: for a row inserted by Core, never for the session.
    """
    found = _plain.get(kind)
    if found is None:
        mapper = inspect_mapper(kind)
        if not mapper.configured:
            configure_mappers()
        # Every column attribute held (None until given): reading one the row lacks would go
        # through the instrumentation's default-value events instead of the dict.
        unset = dict.fromkeys(attr.key for attr in mapper.column_attrs)
        found = _plain[kind] = (mapper.class_manager, unset)
    manager, unset = found
    row = cast(R, manager.new_instance())
    held = row.__dict__
    held.update(unset)
    held.update(values)
    return row


def values_of(row: PaymentsBase) -> dict[str, Any]:
    """A mapped object's column values by column key (a column's default where unset)."""
    _, pairs = _shape(type(row))
    held = row.__dict__  # what a new row holds (its instrumented attributes read from here)
    values = {}
    for attribute, column, default in pairs:
        value = held[attribute] if attribute in held else getattr(row, attribute)
        values[column] = default if value is None else value
    return values


def inserts(rows: Sequence[PaymentsBase]) -> list[Statement]:
    """One ``INSERT`` statement per table (rows of a table together, first-seen order)."""
    grouped: dict[type[PaymentsBase], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(type(row), []).append(values_of(row))
    statements: list[Statement] = []
    for kind, values in grouped.items():
        statement, _ = _shape(kind)
        statements.append((statement, values if len(values) > 1 else values[0]))
    return statements


def insert_of(kind: type[PaymentsBase], values: list[dict[str, Any]]) -> Statement:
    """The ``INSERT`` of rows of ``kind`` given as column values (an ``executemany``)."""
    statement, _ = _shape(kind)
    return (statement, values if len(values) > 1 else values[0])


async def add_rows(session: AsyncSession, *rows: PaymentsBase) -> None:
    """Insert ``rows`` in ``session``'s transaction, in one trip."""
    await execute_together(session, inserts(rows))
