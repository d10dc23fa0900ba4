"""The built-in roles and the scopes each grants by default (ARCHITECTURE §4)."""

from __future__ import annotations

BUILTIN_ROLES: dict[str, tuple[str, str]] = {
    "admin": (
        "administers users, clients, keys and every service",
        "openid auth:admin audit:read system/*.cruds user/*.cruds synthetic:generate "
        "payments:read payments:write payments:admin devices:read devices:write devices:admin",
    ),
    "clinician": (
        "reads and writes clinical records of the patients in their care",
        "openid fhirUser user/*.cruds devices:read",
    ),
    "patient": (
        "reads their own record (compartment-bound) and pays their bills",
        "openid fhirUser launch/patient patient/*.rs payments:read payments:write",
    ),
    "billing": (
        "handles payments and the claims behind them",
        "openid payments:read payments:write user/Patient.rs user/Claim.rs "
        "user/ExplanationOfBenefit.rs user/Coverage.rs",
    ),
    "device-manager": (
        "registers devices and manages their alert rules",
        "openid devices:read devices:write devices:admin",
    ),
    "auditor": ("reads the audit trails", "openid audit:read"),
    "service": (
        "a backend service acting on its own behalf",
        "system/*.cruds devices:ingest synthetic:generate payments:read payments:write",
    ),
}
