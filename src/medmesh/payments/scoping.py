"""Who may see what: a patient-bound token sees only the customer that carries its patient
(``metadata[patient]``) and that customer's payment methods, intents and refunds."""

from __future__ import annotations

from dataclasses import dataclass

from medmesh.platform.origin import RequestOrigin


@dataclass(frozen=True, slots=True)
class Caller:
    origin: RequestOrigin
    #: Set for the 3-D Secure return only: the intent's client secret authorized it.
    unscoped: bool = False

    @property
    def owner(self) -> str:
        """Whose idempotency keys these are: the client and the subject it acts for."""
        principal = self.origin.principal
        if principal is None:
            return "anonymous"
        return f"{principal.client_id}|{principal.sub}"

    @property
    def patient_ref(self) -> str | None:
        """``Patient/<id>`` of a patient-bound token; None when the caller is not bound."""
        if self.unscoped or self.origin.principal is None:
            return None
        patient = self.origin.principal.patient
        return canonical_patient_ref(patient) if patient else None


def canonical_patient_ref(value: str) -> str | None:
    """``Patient/<id>`` from ``<id>``, ``Patient/<id>`` or a URL ending in it; None if it is not
    a FHIR id."""
    text = value.strip().rstrip("/")
    if "/Patient/" in text:
        text = text.rsplit("/Patient/", 1)[1]
    text = text.removeprefix("Patient/")
    ok = 1 <= len(text) <= 64 and all(c.isalnum() or c in "-." for c in text)
    return f"Patient/{text}" if ok else None
