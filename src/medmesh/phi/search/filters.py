"""SQL conditions of search clauses, on the current-resource table and the index tables.

Every condition is ``resources.id IN (ids of this type that match)``, so clauses compose
by AND, chains nest one level, and the index tables are read through their lookup indexes.

A chain (``subject:Patient.name=...``) reads another type's data, so its inner query is
confined by the caller's reach into that type (``ChainReach``, built by
:func:`medmesh.phi.search.access.chain_reach`); a target type without one matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    false,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, aliased

from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.search.definitions import DATE, REFERENCE, STRING, TOKEN, SearchParamDef
from medmesh.phi.search.extract import LOOKUP_PREFIX, MAX_PREFIX, blind_code, parse_reference
from medmesh.phi.search.models import (
    VALUE_LENGTH,
    DateIndexRow,
    ReferenceIndexRow,
    StringIndexRow,
    TokenIndexRow,
)
from medmesh.phi.search.query import Clause, DateValue, SearchError, parse_date, split_token
from medmesh.platform.crypto import BlindIndex


def range_condition(
    low: SQLColumnExpression[datetime], high: SQLColumnExpression[datetime], v: DateValue
) -> ColumnElement[bool]:
    """FHIR prefix semantics between a stored range ``[low, high)`` and the searched one."""
    ql, qh = v.low, v.high
    # ge and le are ORs; each gets a redundant range it implies (low < high), so that the
    # planner can read the (param, high) or (param, low) index instead of every date row.
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(low >= ql, high <= qh),
        "ne": or_(low < ql, high > qh),
        "gt": high > qh,
        "lt": low < ql,
        "ge": and_(high > ql, or_(high > qh, low >= ql)),
        "le": and_(low < qh, or_(low < ql, high <= qh)),
        "sa": low >= qh,
        "eb": high <= ql,
        "ap": and_(low < qh, high > ql),
    }
    return conditions[v.prefix]


def point_condition(moment: SQLColumnExpression[datetime], v: DateValue) -> ColumnElement[bool]:
    """The same semantics for a stored instant (``meta.lastUpdated``)."""
    ql, qh = v.low, v.high
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(moment >= ql, moment < qh),
        "ne": or_(moment < ql, moment >= qh),
        "gt": moment >= qh,
        "lt": moment < ql,
        "ge": moment >= ql,
        "le": moment < qh,
        "sa": moment >= qh,
        "eb": moment < ql,
        "ap": and_(moment >= ql, moment < qh),
    }
    return conditions[v.prefix]


#: Chained target type -> the rows of that type the caller may search (a condition on ResourceRow).
ChainReach = Mapping[str, ColumnElement[bool]]
NO_CHAINS: ChainReach = {}


class ClauseCompiler:
    def __init__(self, blind: BlindIndex) -> None:
        self.blind = blind

    def condition(
        self, resource_type: str, clause: Clause, chained: ChainReach = NO_CHAINS
    ) -> ColumnElement[bool]:
        """The condition on :class:`ResourceRow` that a resource of ``resource_type`` matches ``clause``.

        ``chained`` confines a chain's inner query to what the caller may search of each
        target type; a target missing from it matches nothing (fail closed).
        """
        r = ResourceRow
        definition = clause.definition
        if definition.name == "_id" and clause.missing is None:
            ids = [v[:64] for v in clause.values]
            return r.id.notin_(ids) if clause.modifier == "not" else r.id.in_(ids)
        if definition.name == "_lastUpdated":
            if clause.missing is not None:
                return false() if clause.missing else true()
            return or_(*(point_condition(r.last_updated, parse_date(v)) for v in clause.values))
        if clause.missing is not None:
            present = r.id.in_(self._present(resource_type, definition, clause))
            return not_(present) if clause.missing else present
        matching = r.id.in_(self.matching_ids(resource_type, clause, chained))
        return not_(matching) if clause.modifier == "not" else matching

    def matching_ids(
        self, resource_type: str, clause: Clause, chained: ChainReach = NO_CHAINS
    ) -> Select[tuple[str]]:
        """Ids of resources of ``resource_type`` that have a value matching ``clause``."""
        definition = clause.definition
        key = definition.index_key
        if definition.name in ("_id", "_lastUpdated"):
            r = ResourceRow
            return select(r.id).where(
                r.resource_type == resource_type,
                r.deleted.is_(False),
                self.condition(resource_type, clause),
            )
        if definition.type == STRING:
            s = StringIndexRow
            exact = clause.modifier == "exact"
            found = [self._string(v, exact) for v in clause.values]
            return select(s.resource_id).where(
                s.resource_type == resource_type,
                _param_is(s.param, definition),
                s.indexed == true(),
                s.token.in_([short for short, _ in found]),
                or_(*(s.token == short if held is None else held for short, held in found)),
            )
        if definition.type == TOKEN:
            t = TokenIndexRow
            return select(t.resource_id).where(
                t.resource_type == resource_type,
                t.param == key,
                or_(*(self._token(definition, v) for v in clause.values)),
            )
        if definition.type == DATE:
            d = DateIndexRow
            return select(d.resource_id).where(
                d.resource_type == resource_type,
                d.param == key,
                or_(*(range_condition(d.low, d.high, parse_date(v)) for v in clause.values)),
            )
        if definition.type == REFERENCE:
            ref = ReferenceIndexRow
            stmt = select(ref.resource_id).where(
                ref.resource_type == resource_type, ref.param == key
            )
            targets = (clause.target_type,) if clause.target_type else definition.target
            if targets:
                stmt = stmt.where(ref.target_type.in_(targets))
            if clause.chain is not None:
                return stmt.where(
                    or_(
                        *(
                            and_(
                                ref.target_type == target,
                                ref.target_id.in_(self._chained_ids(target, inner, chained)),
                            )
                            for target, inner in clause.chain.targets
                        )
                    )
                )
            return stmt.where(or_(*(self._reference(v) for v in clause.values)))
        raise SearchError(
            f"the search parameter {definition.name} cannot be searched", issue_code="not-supported"
        )

    def _chained_ids(self, target: str, inner: Clause, chained: ChainReach) -> Select[tuple[str]]:
        """Ids of live ``target`` resources matching ``inner`` within the caller's reach into ``target``."""
        r = ResourceRow
        narrowing = chained.get(target, false())
        # The outer query reads ResourceRow too: without correlate(None) SQLAlchemy would
        # correlate this subquery to it and drop its own FROM.
        return (
            select(r.id)
            .where(
                r.resource_type == target,
                r.deleted.is_(False),
                self.condition(target, inner),
                narrowing,
            )
            .correlate(None)
        )

    def _present(
        self, resource_type: str, definition: SearchParamDef, clause: Clause
    ) -> Select[tuple[str]]:
        tables: dict[
            str, type[StringIndexRow | TokenIndexRow | DateIndexRow | ReferenceIndexRow]
        ] = {
            STRING: StringIndexRow,
            TOKEN: TokenIndexRow,
            DATE: DateIndexRow,
            REFERENCE: ReferenceIndexRow,
        }
        row = tables[definition.type]
        stmt = select(row.resource_id).where(
            row.resource_type == resource_type, _param_is(row.param, definition)
        )
        if definition.type == STRING:
            # Every value has an indexed row (its first character's prefix).
            stmt = stmt.where(StringIndexRow.indexed == true())
        if definition.type == REFERENCE and (clause.target_type or definition.target):
            targets = (clause.target_type,) if clause.target_type else definition.target
            stmt = stmt.where(ReferenceIndexRow.target_type.in_(targets))
        return stmt

    def _string(self, value: str, exact: bool) -> tuple[str, ColumnElement[bool] | None]:
        """How the lookup index (its ``indexed`` rows) finds values that start with ``value``
        (or are it): the token of its prefix of ``LOOKUP_PREFIX`` characters, and, when that is
        not the whole search, the condition that the same resource's rows of the same parameter
        hold the longer prefix or the whole value."""
        s = StringIndexRow
        if exact:
            short, whole = self.blind.prefix_token(value, LOOKUP_PREFIX), self.blind.token(value)
        else:
            value = value[:MAX_PREFIX]
            short = self.blind.prefix_token(value, LOOKUP_PREFIX)
            whole = self.blind.prefix_token(value)
            if short == whole:
                return short, None
        own = aliased(StringIndexRow)
        held = (
            select(own.token)
            .where(
                own.resource_type == s.resource_type,
                own.resource_id == s.resource_id,
                own.param == s.param,
                own.token == whole,
            )
            .correlate(s)
        )
        return short, and_(s.token == short, held.exists())

    def _token(self, definition: SearchParamDef, value: str) -> ColumnElement[bool]:
        t = TokenIndexRow
        system, code = split_token(value)
        conditions: list[ColumnElement[bool]] = []
        if system is not None:
            conditions.append(t.system == system[:VALUE_LENGTH])
        if code is not None:
            stored = blind_code(self.blind, definition, code) if definition.blind else code
            conditions.append(t.code == stored[:VALUE_LENGTH])
        return and_(true(), *conditions)

    @staticmethod
    def _reference(value: str) -> ColumnElement[bool]:
        ref = ReferenceIndexRow
        target = parse_reference(value)
        if target is not None:
            return and_(ref.target_type == target[0], ref.target_id == target[1])
        return ref.target_id == value[:64]

    def category(
        self, resource_type: str, definition: SearchParamDef | None, limits: Sequence[str]
    ) -> ColumnElement[bool]:
        """Only resources with one of the ``?category=`` limits of the caller's scopes."""
        if definition is None:
            return false()
        clause = Clause(definition, None, tuple(limits))
        return ResourceRow.id.in_(self.matching_ids(resource_type, clause))


def compartment_condition(
    patient_column: InstrumentedAttribute[str | None],
    visible: tuple[str, ...] | None,
    excluded: frozenset[str],
) -> ColumnElement[bool]:
    """``patient_id`` within the visible compartments and outside the Consent-denied ones."""
    conditions: list[ColumnElement[bool]] = []
    if visible is not None:
        conditions.append(patient_column.in_(visible) if visible else false())
    if excluded:
        conditions.append(or_(patient_column.is_(None), patient_column.notin_(sorted(excluded))))
    return and_(true(), *conditions)


def version_visibility(
    groups: Sequence[tuple[Sequence[str], tuple[str, ...] | None, frozenset[str]]],
) -> ColumnElement[bool]:
    """History visibility: for each group of types, the versions within its compartments."""
    v = ResourceVersionRow
    if not groups:
        return false()
    return or_(
        *(
            and_(
                v.resource_type.in_(list(types)),
                compartment_condition(v.patient_id, visible, excluded),
            )
            for types, visible, excluded in groups
        )
    )


def _param_is(
    column: InstrumentedAttribute[str], definition: SearchParamDef
) -> ColumnElement[bool]:
    """Rows of ``definition``: its own, and those of the parameters it also reads."""
    keys = definition.read_keys
    return column == keys[0] if len(keys) == 1 else column.in_(keys)
