"""Who may do what to which patient's data: SMART v2 scopes, the patient compartment,
``?category=`` limits, Consent denials and break-glass.

One :class:`AccessPolicy` per request, built from the caller's :class:`Principal`.
Every route asks it before touching data (``allows``/``require``) and every query is
narrowed by it (``grants``: scope by scope, the same decision as ``allows``; history by
``visible_patients`` and ``excluded_patients``), so a patient-bound token sees only its
compartment through read, search (chains, counts and conditional matches included),
``_include``, history, ``$everything`` and transactions.

The rules:

- Scopes are SMART v2 ``<context>/<Type|*>.<cruds>`` (v1 ``.read``/``.write`` too,
  parsed by :mod:`medmesh.platform.tokens.scopes`); a permission is one letter: ``c`` create,
  ``r`` read/vread/history, ``u`` update, ``d`` delete, ``s`` search.
- ``system/`` and ``user/`` scopes reach every patient, except that a ``user/`` scope
  does not reach a patient whose active Consent denies access (see
  :mod:`medmesh.phi.access.consent`); ``system/`` (a backend acting for itself) does.
- ``patient/`` scopes reach only the token's ``patient`` (its compartment). A
  patient token may also read and search :data:`SHARED_TYPES` resources
  (Practitioner, Organization, Location, Medication ...): reference data that lives in
  no patient's compartment. It can never write them, nor a Patient of its own. The other
  types outside every compartment (:data:`PRIVATE_TYPES`: Bundle, Binary, Task ...) it
  cannot reach.
- ``?category=`` limits a scope to resources carrying one of the listed categories
  (``system|code`` or a bare ``code``); a resource without a matching category, or
  a type without ``category``, is outside the scope. Reads of other categories are
  refused; searches are filtered (``category_limits``).
- Break-glass: a caller with role ``clinician`` who sends ``X-Break-Glass-Reason`` and
  holds a ``user/`` scope for the type and permission may **read and search** past a
  Consent denial or a category limit of that scope. Writes never break the glass. The
  access is allowed, ``break_glass_used`` is set (the auditor then writes the reason as
  the record's purpose and ``break_glass: true`` in its details) and the response carries
  ``X-Break-Glass-Used: true`` (:mod:`medmesh.phi.access.break_glass`). The glass is
  broken only when the normal grants would have refused, so a reason sent "just in
  case" is neither flagged nor recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medmesh.phi.fhir.compartment import PATIENT_LINKS
from medmesh.phi.fhir.types import SUPPORTED_TYPES
from medmesh.platform.errors import Forbidden
from medmesh.platform.tokens import Principal, SmartScope

CLINICIAN_ROLE = "clinician"
#: What break-glass may do: read (read, vread, history) and search; never write.
BREAK_GLASS_PERMISSIONS = frozenset("rs")
#: Types in no patient's compartment that may still hold one patient's data (a Bundle, a
#: Binary, a Task for them) or are the server's operations (Subscription, MessageHeader):
#: reached with ``user/`` or ``system/`` scopes only.
PRIVATE_TYPES: frozenset[str] = frozenset(
    {"Binary", "BiologicallyDerivedProduct", "Bundle", "Contract", "DeviceMetric"}
    | {"EnrollmentResponse", "GuidanceResponse", "Linkage", "MessageHeader", "PaymentNotice"}
    | {"PaymentReconciliation", "Subscription", "Task", "TestReport", "VerificationResult"}
)
#: Types in no patient's compartment that a patient token may read and search: reference data
#: (Practitioner, Organization, Location, Medication, Endpoint, ValueSet, Questionnaire ...).
SHARED_TYPES: frozenset[str] = SUPPORTED_TYPES - PATIENT_LINKS.keys() - {"Patient"} - PRIVATE_TYPES
_BROAD = ("user", "system")


@dataclass(frozen=True, slots=True)
class Grant:
    """The rows one scope lets a query of a type return.

    Within the ``visible`` compartments (None: any, including none), outside the ``excluded``
    ones, and carrying one of ``categories`` (None: any). A query returns the union of its
    grants, which is exactly what :meth:`AccessPolicy.allows` lets a read see.
    """

    visible: tuple[str, ...] | None
    excluded: frozenset[str]
    categories: tuple[str, ...] | None


class AccessDenied(Forbidden):
    """403 ``forbidden``: the token does not allow this access."""

    code = "forbidden"

    def __repr__(self) -> str:
        return f"AccessDenied({self.message!r})"


def resource_codes(resource: dict[str, Any], element: str) -> set[str]:
    """``system|code`` and ``code`` of every coding under ``element`` (a CodeableConcept or a list)."""
    value = resource.get(element)
    found: set[str] = set()
    for concept in value if isinstance(value, list) else [value]:
        if isinstance(concept, dict):
            for coding in concept.get("coding", []) or []:
                if isinstance(coding, dict) and coding.get("code"):
                    found.add(str(coding["code"]))
                    if coding.get("system"):
                        found.add(f"{coding['system']}|{coding['code']}")
    return found


def _category_ok(scope: SmartScope, resource: dict[str, Any] | None) -> bool:
    wanted = scope.param("category")
    if not wanted:
        return True
    if resource is None:
        return False
    return bool(set(wanted) & resource_codes(resource, "category"))


@dataclass
class AccessPolicy:
    """The caller's rights for one request."""

    principal: Principal
    break_glass_reason: str | None = None
    #: Patients whose Consent denies ``user/`` access (filled from the ConsentRegistry).
    denied_patients: frozenset[str] = field(default_factory=frozenset)
    #: Set once a decision needed break-glass; the auditor and the response report it.
    break_glass_used: bool = False

    @property
    def patient(self) -> str | None:
        """The patient a patient-bound token is confined to."""
        return self.principal.patient

    def _scopes(self, resource_type: str, permission: str) -> list[SmartScope]:
        return self.principal.scopes.smart_scopes_for(resource_type, permission)

    # --- single resources --------------------------------------------------------------------

    def require(
        self,
        permission: str,
        resource_type: str,
        patient_id: str | None,
        resource: dict[str, Any] | None = None,
    ) -> None:
        """Allow ``permission`` (c/r/u/d/s) on a resource of ``patient_id``, or raise 403."""
        if not self.allows(permission, resource_type, patient_id, resource):
            raise AccessDenied(
                f"the access token does not allow {_VERBS.get(permission, permission)} "
                f"of this {resource_type}"
            )

    def allows(
        self,
        permission: str,
        resource_type: str,
        patient_id: str | None,
        resource: dict[str, Any] | None = None,
    ) -> bool:
        """True when ``permission`` on this resource is granted (or break-glass applies).

        ``patient_id`` is the compartment the resource is in (None: none). ``resource`` is
        its JSON, needed when a scope has a ``?category=`` limit (without it such a scope
        does not grant). ``allows("s", type, None)`` asks whether the type may be searched
        at all; what the search then returns is narrowed by :meth:`visible_patients`,
        :meth:`excluded_patients` and :meth:`category_limits`.
        """
        if permission == "s" and patient_id is None and resource is None:
            return self.can_search(resource_type)
        if self._granted(permission, resource_type, patient_id, resource):
            return True
        return self._break_glass(permission, resource_type)

    def _granted(
        self,
        permission: str,
        resource_type: str,
        patient_id: str | None,
        resource: dict[str, Any] | None,
    ) -> bool:
        for scope in self._scopes(resource_type, permission):
            if not _category_ok(scope, resource):
                continue
            if scope.context == "patient":
                if self.patient is not None and patient_id == self.patient:
                    return True
                if patient_id is None and resource_type in SHARED_TYPES and permission in "rs":
                    return True
                continue
            if (
                scope.context == "user"
                and patient_id is not None
                and patient_id in self.denied_patients
            ):
                continue
            return True
        return False

    def creates_any(self, resource_type: str) -> bool:
        """True when a system scope grants creating any ``resource_type`` whatever it holds
        (no patient, Consent or ``?category=`` limit to check a resource against)."""
        return any(
            scope.context == "system" and not scope.param("category")
            for scope in self._scopes(resource_type, "c")
        )

    def can_search(self, resource_type: str) -> bool:
        """True when some scope lets this caller search ``resource_type`` (in some compartment)."""
        for scope in self._scopes(resource_type, "s"):
            if scope.context in _BROAD or self.patient is not None or resource_type in SHARED_TYPES:
                return True
        return False

    # --- break-glass -------------------------------------------------------------------------

    def may_break_glass(self, permission: str, resource_type: str) -> bool:
        """True when a clinician's reason would let this read or search past the normal grants."""
        return (
            bool(self.break_glass_reason)
            and CLINICIAN_ROLE in self.principal.roles
            and permission in BREAK_GLASS_PERMISSIONS
            and any(scope.context == "user" for scope in self._scopes(resource_type, permission))
        )

    def _break_glass(self, permission: str, resource_type: str) -> bool:
        if self.may_break_glass(permission, resource_type):
            self.break_glass_used = True
            return True
        return False

    # --- searches and other queries ----------------------------------------------------------

    def grants(
        self, resource_type: str, permission: str = "s", *, break_glass: bool = True
    ) -> tuple[Grant, ...]:
        """What each scope lets a query of ``resource_type`` return (their union; none: nothing).

        Scope by scope, as :meth:`allows` decides a single resource: a query that combined
        the compartments, Consent exclusions and category limits of different scopes
        separately could return a row no single scope grants (a count, a chain's inner query
        or a conditional match has no per-row check behind it). A clinician's break-glass
        grants every row (flagged by the per-row :meth:`allows` check of what is returned);
        ``break_glass=False`` gives the grants without it.
        """
        if break_glass and self.may_break_glass(permission, resource_type):
            return (Grant(None, frozenset(), None),)
        found: list[Grant] = []
        for scope in self._scopes(resource_type, permission):
            wanted = scope.param("category")
            categories = tuple(sorted(wanted)) if wanted else None
            if scope.context == "patient":
                if resource_type in SHARED_TYPES and permission in "rs":
                    grant = Grant(None, frozenset(), categories)
                elif self.patient is not None:
                    grant = Grant((self.patient,), frozenset(), categories)
                else:
                    continue
            elif scope.context == "user":
                grant = Grant(None, self.denied_patients, categories)
            else:
                grant = Grant(None, frozenset(), categories)
            if grant not in found:
                found.append(grant)
        return tuple(found)

    def visible_patients(self, resource_type: str, permission: str = "s") -> tuple[str, ...] | None:
        """The compartments a query of ``resource_type`` is confined to; None = no confinement.

        A patient-bound token (only ``patient/`` scopes allow this type) sees its own
        patient; ``()`` means nothing is visible. Shared types are not confined.
        """
        scopes = self._scopes(resource_type, permission)
        if any(scope.context in _BROAD for scope in scopes):
            return None
        if scopes and resource_type in SHARED_TYPES:
            return None
        if not scopes or self.patient is None:
            return ()
        return (self.patient,)

    def excluded_patients(self, resource_type: str, permission: str = "s") -> frozenset[str]:
        """Patients a query must leave out: Consent denials of a ``user/`` caller.

        ``system/`` sees all; a patient-bound caller is confined to itself anyway. A clinician's
        break-glass lifts the exclusion; the request is flagged only when a row it returns needs
        it, by the per-row :meth:`allows` check every query makes before returning a row.
        """
        scopes = self._scopes(resource_type, permission)
        if not self.denied_patients or any(scope.context == "system" for scope in scopes):
            return frozenset()
        if not any(scope.context == "user" for scope in scopes):
            return frozenset()
        if self.may_break_glass(permission, resource_type):
            return frozenset()
        return self.denied_patients - {self.patient} if self.patient else self.denied_patients

    def category_limits(self, resource_type: str, permission: str = "s") -> list[str] | None:
        """The categories (``system|code`` or ``code``) a query must be limited to; None = unlimited.

        Taken from the scopes that decide visibility: the ``user/``/``system/`` ones when
        present (so a patient scope cannot widen a limited user scope to every patient),
        else the ``patient/`` ones. A clinician's break-glass lifts the limits (flagged, as for
        :meth:`excluded_patients`, by the per-row :meth:`allows` check of what is returned).
        """
        scopes = self._scopes(resource_type, permission)
        deciding = [scope for scope in scopes if scope.context in _BROAD] or scopes
        limits: set[str] = set()
        for scope in deciding:
            wanted = scope.param("category")
            if not wanted:
                return None
            limits.update(wanted)
        if not limits:
            return None
        if self.may_break_glass(permission, resource_type):
            return None
        return sorted(limits)

    def resource_visible(
        self, resource_type: str, patient_id: str | None, resource: dict[str, Any]
    ) -> bool:
        """Whether a resource found by a query (an ``_include``, ``$everything`` entry ...) may be shown.

        The same decision as a read, so included resources cannot escape the compartment,
        a Consent denial or a category limit.
        """
        return self.allows("r", resource_type, patient_id, resource)


_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
