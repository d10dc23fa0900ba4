import pytest

from medmesh.platform.errors import MedmeshError
from medmesh.platform.tokens import InvalidScope, ScopeSet, SmartScope, narrow

VITALS = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"


@pytest.mark.parametrize(
    ("scope", "context", "resource_type", "permissions"),
    [
        ("patient/Observation.rs", "patient", "Observation", "rs"),
        ("user/*.cruds", "user", "*", "cruds"),
        ("system/Patient.c", "system", "Patient", "c"),
        ("patient/Observation.read", "patient", "Observation", "rs"),
        ("user/Encounter.write", "user", "Encounter", "cud"),
        ("patient/*.*", "patient", "*", "cruds"),
    ],
)
def test_smart_scopes_parse(scope: str, context: str, resource_type: str, permissions: str) -> None:
    parsed = SmartScope.parse(scope)
    assert (parsed.context, parsed.resource_type) == (context, resource_type)
    assert parsed.permissions == frozenset(permissions)
    assert parsed.params == ()


def test_query_parameters_are_kept() -> None:
    parsed = SmartScope.parse(f"patient/Observation.rs?category={VITALS}&code=1234")
    assert parsed.param("category") == [VITALS]
    assert parsed.param("code") == ["1234"]
    assert str(parsed) == f"patient/Observation.rs?category={VITALS}&code=1234"


@pytest.mark.parametrize(
    "scope",
    [
        "patient/Observation.xyz",
        "patient/.rs",
        "patient/Observation",
        "patient/Observation.sr",
        "patient/Observation.rr",
        "user/observation.rs",
        "system/Patient.",
        "patient/Observation.rs?",
    ],
)
def test_invalid_smart_scopes_raise(scope: str) -> None:
    with pytest.raises(InvalidScope) as caught:
        ScopeSet(scope)
    assert isinstance(caught.value, MedmeshError)
    assert (caught.value.status, caught.value.code) == (400, "invalid_scope")


def test_plain_scopes_are_kept_verbatim() -> None:
    scopes = ScopeSet(
        "openid fhirUser launch/patient offline_access auth:admin audit:read "
        "synthetic:generate payments:read devices:ingest patient/Patient.r"
    )
    for plain in ("openid", "fhirUser", "launch/patient", "auth:admin", "devices:ingest"):
        assert scopes.has(plain)
    assert not scopes.has("payments:write")
    assert scopes.plain == frozenset(
        {
            "openid",
            "fhirUser",
            "launch/patient",
            "offline_access",
            "auth:admin",
            "audit:read",
            "synthetic:generate",
            "payments:read",
            "devices:ingest",
        }
    )
    assert len(scopes) == 10


def test_allows_by_type_permission_and_context() -> None:
    scopes = ScopeSet("patient/Observation.rs user/*.r system/Patient.cud")
    assert scopes.allows("Observation", "s")
    assert scopes.allows("Condition", "r")
    assert not scopes.allows("Condition", "s")
    assert scopes.allows("Patient", "c", context="system")
    assert not scopes.allows("Patient", "c", context="user")
    assert not scopes.allows("Observation", "s", context="user")
    assert scopes.contexts() == frozenset({"patient", "user", "system"})
    with pytest.raises(ValueError, match="permission"):
        scopes.allows("Patient", "x")


def test_smart_scopes_for_returns_category_limits() -> None:
    scopes = ScopeSet(f"patient/Observation.rs?category={VITALS} patient/Condition.r")
    found = scopes.smart_scopes_for("Observation", "r")
    assert [s.param("category") for s in found] == [[VITALS]]
    assert scopes.smart_scopes_for("Observation", "c") == []


def test_has_accepts_smart_scopes_covered_by_wider_ones() -> None:
    scopes = ScopeSet("patient/*.cruds user/Observation.read")
    assert scopes.has("patient/Observation.rs")
    assert scopes.has("user/Observation.s")
    assert not scopes.has("user/Observation.c")
    assert not scopes.has("system/Observation.r")
    assert "patient/Patient.d" in scopes


def test_parse_is_cached_and_sets_compare_by_content() -> None:
    assert ScopeSet.parse("openid a:b") is ScopeSet.parse("openid a:b")
    assert ScopeSet("a:b openid") == ScopeSet("openid a:b openid")
    assert str(ScopeSet("openid  openid a:b")) == "openid a:b"
    assert not ScopeSet("")


def test_narrow_grants_covered_scopes() -> None:
    allowed = ScopeSet("openid patient/*.cruds user/Observation.read auth:admin")
    requested = "openid patient/Observation.rs user/Observation.rs"
    assert narrow(requested, allowed) == requested
    assert narrow("", allowed) == str(allowed)


@pytest.mark.parametrize(
    "requested",
    ["payments:read", "user/Observation.c", "system/Patient.r", "user/*.rs", "patient/X.rs?bad"],
)
def test_narrow_refuses_uncovered_scopes(requested: str) -> None:
    allowed = ScopeSet("openid patient/*.cruds user/Observation.read")
    with pytest.raises(InvalidScope):
        narrow(requested, allowed)


def test_category_limits_must_be_kept_when_narrowing() -> None:
    allowed = ScopeSet(f"patient/Observation.rs?category={VITALS}")
    assert narrow(f"patient/Observation.r?category={VITALS}", allowed)
    with pytest.raises(InvalidScope):
        narrow("patient/Observation.r", allowed)
    with pytest.raises(InvalidScope):
        narrow("patient/Observation.r?category=laboratory", allowed)
