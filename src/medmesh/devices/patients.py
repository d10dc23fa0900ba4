"""A patient reference from input in its one canonical form, ``Patient/<id>``."""

from __future__ import annotations

import re

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def canonical_patient_ref(value: str) -> str | None:
    """``Patient/<id>`` from ``<id>``, ``Patient/<id>`` or an absolute URL ending in it; None when
    the id is not a FHIR id."""
    text = value.strip().rstrip("/")
    if "/Patient/" in text:
        text = text.rsplit("/Patient/", 1)[1]
    text = text.removeprefix("Patient/")
    return f"Patient/{text}" if _FHIR_ID.match(text) else None
