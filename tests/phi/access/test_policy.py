"""AccessPolicy decisions, one rule at a time (the HTTP tests show them end to end)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medmesh.phi.access.policy import SHARED_TYPES, AccessDenied, AccessPolicy
from medmesh.platform.tokens import Principal, ScopeSet
from tests.phi.resources.support import VITAL_SIGNS, observation

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def policy(
    scope: str,
    *,
    patient: str | None = None,
    roles: tuple[str, ...] = (),
    reason: str | None = None,
    denied: frozenset[str] = frozenset(),
) -> AccessPolicy:
    principal = Principal(
        sub="u1",
        client_id="c1",
        roles=frozenset(roles),
        scopes=ScopeSet(scope),
        raw_scope=scope,
        patient=patient,
        fhir_user=None,
        audience=("medmesh-phi",),
        jti="j",
        issued_at=NOW,
        expires_at=NOW,
    )
    return AccessPolicy(principal, break_glass_reason=reason, denied_patients=denied)


def test_permission_letters_and_v1_scopes() -> None:
    rs = policy("user/Observation.rs")
    assert rs.allows("r", "Observation", "p1")
    assert rs.allows("s", "Observation", None)
    assert not rs.allows("c", "Observation", "p1")
    assert not rs.allows("r", "Patient", "p1")
    v1 = policy("user/*.write")
    assert v1.allows("c", "Patient", "p1")
    assert v1.allows("d", "Observation", "p1")
    assert not v1.allows("r", "Patient", "p1")
    with pytest.raises(AccessDenied) as refused:
        rs.require("d", "Observation", "p1")
    assert refused.value.status == 403


def test_patient_scopes_are_confined_to_the_compartment() -> None:
    mine = policy("patient/*.rs", patient="p1")
    assert mine.allows("r", "Observation", "p1")
    assert not mine.allows("r", "Observation", "p2")
    assert not mine.allows("r", "Observation", None)
    assert mine.visible_patients("Observation") == ("p1",)
    assert mine.visible_patients("Practitioner") is None
    assert mine.allows("r", "Practitioner", None)
    assert "Practitioner" in SHARED_TYPES
    assert not policy("patient/*.cruds", patient="p1").allows("c", "Organization", None)
    # A patient scope without a patient claim reaches nothing.
    orphan = policy("patient/*.rs")
    assert not orphan.allows("r", "Observation", "p1")
    assert orphan.visible_patients("Observation") == ()
    assert not orphan.can_search("Observation")


def test_user_and_system_scopes_reach_everyone_but_consent_stops_user() -> None:
    user = policy("user/*.rs", denied=frozenset({"p2"}))
    assert user.allows("r", "Observation", "p1")
    assert not user.allows("r", "Observation", "p2")
    assert user.visible_patients("Observation") is None
    assert user.excluded_patients("Observation") == {"p2"}
    system = policy("system/*.rs", denied=frozenset({"p2"}))
    assert system.allows("r", "Observation", "p2")
    assert system.excluded_patients("Observation") == frozenset()


def test_category_limits() -> None:
    vitals = policy(f"patient/Observation.rs?category={VITAL_SIGNS}", patient="p1")
    assert vitals.allows("r", "Observation", "p1", observation("p1", "vital-signs"))
    assert not vitals.allows("r", "Observation", "p1", observation("p1", "laboratory"))
    assert not vitals.allows("r", "Observation", "p1", None)
    assert vitals.category_limits("Observation") == [VITAL_SIGNS]
    bare = policy("user/Observation.rs?category=vital-signs")
    assert bare.allows("r", "Observation", "p1", observation("p1", "vital-signs"))
    assert policy("user/Observation.rs").category_limits("Observation") is None
    # An unlimited patient scope does not widen a limited user scope to every patient.
    mixed = policy(
        f"user/Observation.rs?category={VITAL_SIGNS} patient/Observation.rs", patient="p1"
    )
    assert mixed.visible_patients("Observation") is None
    assert mixed.category_limits("Observation") == [VITAL_SIGNS]


def test_break_glass() -> None:
    glass = policy(
        "user/*.cruds", roles=("clinician",), reason="emergency", denied=frozenset({"p2"})
    )
    assert glass.allows("r", "Observation", "p1")
    assert not glass.break_glass_used
    assert not glass.allows("u", "Observation", "p2")
    assert not glass.break_glass_used
    assert glass.allows("r", "Observation", "p2")
    assert glass.break_glass_used

    searching = policy(
        "user/*.rs", roles=("clinician",), reason="emergency", denied=frozenset({"p2"})
    )
    # A search reaches the denied patient, but is flagged only when such a row is returned.
    assert searching.excluded_patients("Observation") == frozenset()
    assert not searching.break_glass_used
    assert searching.allows("s", "Observation", "p1")
    assert not searching.break_glass_used
    assert searching.allows("s", "Observation", "p2")
    assert searching.break_glass_used

    limited = policy(
        "user/Observation.rs?category=vital-signs", roles=("clinician",), reason="emergency"
    )
    assert limited.allows("r", "Observation", "p1", observation("p1", "laboratory"))
    assert limited.break_glass_used

    for refused in (
        policy("user/*.rs", roles=("billing",), reason="emergency", denied=frozenset({"p2"})),
        policy("user/*.rs", roles=("clinician",), denied=frozenset({"p2"})),
        policy(
            "patient/*.rs",
            patient="p1",
            roles=("clinician",),
            reason="emergency",
            denied=frozenset({"p2"}),
        ),
    ):
        assert not refused.allows("r", "Observation", "p2")
        assert not refused.break_glass_used
