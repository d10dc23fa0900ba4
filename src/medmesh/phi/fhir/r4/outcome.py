"""Validation issues and the OperationOutcome that carries them.

An :class:`Issue` names the element by its path (``Observation.code.coding[0].system``) and
the problem; its diagnostics never repeat the submitted value (resources carry PHI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: A path under construction: ``(parent, step)`` pairs from the innermost step outwards, so
#: that walking a resource builds no string until an element is refused.
Path = tuple[Any, str | int] | str


def path_text(path: Path) -> str:
    """``("Observation", "code"), "coding"), 0)`` as ``Observation.code.coding[0]``."""
    steps: list[str | int] = []
    while isinstance(path, tuple):
        path, step = path
        steps.append(step)
    text = path
    for step in reversed(steps):
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of a resource, as an OperationOutcome issue states it."""

    severity: str
    code: str
    expression: str
    diagnostics: str

    def as_fhir(self) -> dict[str, Any]:
        """The ``OperationOutcome.issue`` entry."""
        return {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
            "expression": [self.expression],
        }


def error(code: str, path: Path, problem: str) -> Issue:
    """An error-severity issue: ``{path}: {problem}``."""
    where = path_text(path)
    return Issue("error", code, where, f"{where}: {problem}")


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome listing ``issues``; ``all-ok`` information when there are none."""
    if not issues:
        ok = {"severity": "information", "code": "informational", "diagnostics": "all OK"}
        return {"resourceType": "OperationOutcome", "issue": [ok]}
    return {"resourceType": "OperationOutcome", "issue": [issue.as_fhir() for issue in issues]}
