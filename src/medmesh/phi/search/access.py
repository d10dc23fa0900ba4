"""What a caller's policy lets a search or history read, as SQL conditions on the stored rows.

The policy decides (``grants``, and for history ``visible_patients``/``excluded_patients``);
this module turns its answer into the conditions every search, count, include, conditional
match and history query carries.
A chained parameter reads the target type's data, so the caller needs search on every type a
chain traverses (:func:`chain_reach`), and the chain's inner query carries that type's
conditions too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_

from medmesh.phi.access.policy import AccessDenied, Grant
from medmesh.phi.context import FhirContext
from medmesh.phi.models import ResourceRow
from medmesh.phi.search.definitions import parameters_of
from medmesh.phi.search.filters import ChainReach, ClauseCompiler, compartment_condition
from medmesh.phi.search.query import Clause


@dataclass(frozen=True, slots=True)
class Reach:
    """How far a caller reaches into one resource type, under one permission letter."""

    resource_type: str
    permission: str
    visible: tuple[str, ...] | None
    excluded: frozenset[str]
    categories: tuple[str, ...] | None
    #: Scope by scope, what the caller may see (what search, count, chains and matches return).
    grants: tuple[Grant, ...] = ()
    #: The same without break-glass (differs only when a clinician's reason lifts something).
    unbroken: tuple[Grant, ...] = ()

    @property
    def breaks_glass(self) -> bool:
        """Whether break-glass widens what this reach returns."""
        return self.grants != self.unbroken


def permission_for(ctx: FhirContext, resource_type: str, letters: str = "sr") -> str | None:
    """The first of ``letters`` some scope of the caller grants on ``resource_type``."""
    for letter in letters:
        if ctx.principal.scopes.smart_scopes_for(resource_type, letter):
            return letter
    return None


def reach(ctx: FhirContext, resource_type: str, letters: str = "sr") -> Reach | None:
    """The caller's reach into ``resource_type``, or None when no scope allows it."""
    permission = permission_for(ctx, resource_type, letters)
    if permission is None:
        return None
    visible = ctx.policy.visible_patients(resource_type, permission)
    excluded = ctx.policy.excluded_patients(resource_type, permission)
    limits = ctx.policy.category_limits(resource_type, permission)
    return Reach(
        resource_type,
        permission,
        visible,
        excluded,
        tuple(limits) if limits is not None else None,
        ctx.policy.grants(resource_type, permission),
        ctx.policy.grants(resource_type, permission, break_glass=False),
    )


def search_refused(resource_type: str) -> AccessDenied:
    """The 403 of a search (or a chain, or a conditional operation) the token does not allow."""
    return AccessDenied(
        f"the access token does not allow searching {resource_type} "
        f"(needs user/{resource_type}.s or patient/{resource_type}.s)"
    )


def require_reach(ctx: FhirContext, resource_type: str, letters: str = "sr") -> Reach:
    found = reach(ctx, resource_type, letters)
    if found is None:
        raise search_refused(resource_type)
    return found


def chain_reach(
    ctx: FhirContext, compiler: ClauseCompiler, clauses: Iterable[Clause]
) -> ChainReach:
    """The caller's reach into every type the chains of ``clauses`` traverse, or 403.

    Every target type of a chain must be searchable, not only one of them: a chain
    through a type the caller cannot search would answer from that type's data. A chain
    never breaks the glass: it is a search criterion, and nothing would flag a match that
    only a lifted Consent or category made (what a search returns may still need it).
    """
    found: dict[str, ColumnElement[bool]] = {}
    for clause in clauses:
        if clause.chain is None:
            continue
        for target, _ in clause.chain.targets:
            if target not in found:
                target_reach = require_reach(ctx, target)
                found[target] = reach_conditions(compiler, target_reach, break_glass=False)
    return found


def reach_conditions(
    compiler: ClauseCompiler, found: Reach, *, break_glass: bool = True
) -> ColumnElement[bool]:
    """Rows of ``found.resource_type`` the caller may see: the union of what each scope grants
    (its compartments, Consent exclusions and categories together)."""
    grants = found.grants if break_glass else found.unbroken
    if not grants:
        return false()
    definition = parameters_of(found.resource_type).get("category")
    alternatives = []
    for grant in grants:
        conditions = [compartment_condition(ResourceRow.patient_id, grant.visible, grant.excluded)]
        if grant.categories is not None:
            conditions.append(compiler.category(found.resource_type, definition, grant.categories))
        alternatives.append(and_(*conditions))
    return alternatives[0] if len(alternatives) == 1 else or_(*alternatives)
