"""What an import did with one file: lines committed, resources stored, lines rejected."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

#: The most rejected lines an import's OperationOutcome lists (the counts stay exact).
MAX_LISTED_ISSUES = 1000


@dataclass(frozen=True)
class FileProgress:
    """One input file of an import, as of its last committed chunk."""

    #: Where the lines come from (a file name or the URL the caller listed).
    source: str
    #: The resource type the file holds (None: any, each line names its own).
    resource_type: str | None = None
    #: Lines read and settled (stored or rejected), blank lines included; the next line to
    #: read after a restart is ``lines + 1``.
    lines: int = 0
    stored: int = 0
    rejected: int = 0
    #: OperationOutcome issues of rejected lines (at most :data:`MAX_LISTED_ISSUES`).
    issues: tuple[dict[str, Any], ...] = field(default=())
    #: Every line of the file is settled.
    complete: bool = False

    def after_chunk(self, lines: int, stored: int, rejected: list[dict[str, Any]]) -> FileProgress:
        """This progress once a chunk that ended at line ``lines`` is committed."""
        room = max(0, MAX_LISTED_ISSUES - len(self.issues))
        return replace(
            self,
            lines=lines,
            stored=self.stored + stored,
            rejected=self.rejected + len(rejected),
            issues=self.issues + tuple(rejected[:room]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "type": self.resource_type,
            "lines": self.lines,
            "stored": self.stored,
            "rejected": self.rejected,
            "issues": list(self.issues),
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileProgress:
        return cls(
            source=data["source"],
            resource_type=data.get("type"),
            lines=int(data.get("lines", 0)),
            stored=int(data.get("stored", 0)),
            rejected=int(data.get("rejected", 0)),
            issues=tuple(data.get("issues", ())),
            complete=bool(data.get("complete", False)),
        )


def rejection(
    source: str, line: int, code: str, message: str, path: str | None = None
) -> dict[str, Any]:
    """The OperationOutcome issue of a rejected line: where it is and why, never its content."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": code,
        "diagnostics": f"{source} line {line}: {message}",
    }
    if path:
        issue["expression"] = [path]
    return issue


def outcome_of(files: list[FileProgress]) -> dict[str, Any]:
    """One OperationOutcome of every listed rejected line (informational when there is none)."""
    issues = [issue for file in files for issue in file.issues][:MAX_LISTED_ISSUES]
    if not issues:
        issues = [
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": "no line was rejected",
            }
        ]
    return {"resourceType": "OperationOutcome", "issue": issues}
