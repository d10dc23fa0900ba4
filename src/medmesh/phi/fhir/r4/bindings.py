"""Required bindings: whether a code, Coding or CodeableConcept is in its value set.

A ``code`` element carries only the code (its system is implied by the element); a Coding
must name the system and a code of it; a CodeableConcept must hold at least one such Coding
(R4 §4.1: for a required binding, text alone does not convey the concept).
"""

from __future__ import annotations

from typing import Any


def coding_in(binding: dict[str, frozenset[str]], coding: Any) -> bool:
    """Whether the Coding ``coding`` is one of the value set's ``{system: codes}``."""
    if type(coding) is not dict:
        return False
    codes = binding.get(coding.get("system"))  # type: ignore[arg-type]
    return codes is not None and coding.get("code") in codes


def concept_in(binding: dict[str, frozenset[str]], concept: dict[str, Any]) -> bool:
    """Whether one Coding of the CodeableConcept ``concept`` is in the value set."""
    codings = concept.get("coding")
    if type(codings) is not list:
        return False
    return any(coding_in(binding, coding) for coding in codings)
