"""The result model every part of pipewarden reports with."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipewarden.errors import ConfigError

__all__ = ["Finding", "Location", "Report", "Severity"]


class Severity(enum.IntEnum):
    """How bad a finding is: info < low < medium < high < critical."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """The lower-case name used in every output format (``"high"``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Read a severity name, case-insensitively; raise `ConfigError` on anything else."""
        wanted = text.strip().lower()
        for severity in cls:
            if severity.label == wanted:
                return severity
        names = ", ".join(s.label for s in cls)
        raise ConfigError(f"{text!r}: not a severity (expected one of {names})")

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding was made. Only `path` is always set.

    `member` names a place inside a container (``"archive/data.pkl"``, nested
    containers joined with ``"!"``); `offset` is a byte offset in the innermost
    stream; `row`/`column` are for tabular data and `package` for dependencies.
    """

    path: str
    member: str | None = None
    offset: int | None = None
    row: int | None = None
    column: str | None = None
    package: str | None = None

    def describe(self) -> str:
        """A one-line human form: ``model.pt!archive/data.pkl@120``."""
        text = self.path
        if self.member:
            text += f"!{self.member}"
        if self.offset is not None:
            text += f"@{self.offset}"
        if self.row is not None:
            text += f" row {self.row}"
        if self.column is not None:
            text += f" column {self.column}"
        if self.package is not None:
            text += f" package {self.package}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "member": self.member,
            "offset": self.offset,
            "row": self.row,
            "column": self.column,
            "package": self.package,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check concluded about one place.

    `rule_id` is stable (documented per part, e.g. ``PW-SCAN-101``); `evidence`
    holds JSON-serialisable facts (opcode, global name, sizes); `references`
    lists CWE, CVE and MITRE ATLAS ids such as ``"CWE-502"``.
    """

    rule_id: str
    severity: Severity
    title: str
    message: str
    location: Location
    evidence: Mapping[str, Any] = field(default_factory=dict)
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.rule_id:
            raise ValueError("a finding needs a rule_id")
        if not isinstance(self.severity, Severity):
            raise TypeError(f"{self.rule_id}: severity must be a Severity")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.label,
            "title": self.title,
            "message": self.message,
            "location": self.location.to_dict(),
            "evidence": dict(self.evidence),
            "references": list(self.references),
        }

    def relocated(self, location: Location) -> Finding:
        """The same finding at another location."""
        return replace(self, location=location)


def _sort_key(finding: Finding) -> tuple[int, str, str, int, str]:
    loc = finding.location
    return (
        -int(finding.severity),
        loc.path,
        loc.member or "",
        loc.offset if loc.offset is not None else -1,
        finding.rule_id,
    )


@dataclass(frozen=True, slots=True)
class Report:
    """The findings of one command over its targets, ready to render.

    Findings are kept in a stable order (most severe first, then by place), so
    two runs over the same input render byte-identical reports.
    """

    command: str
    findings: tuple[Finding, ...]
    targets: int
    tool: str = "pipewarden"
    version: str = ""

    def __post_init__(self) -> None:
        if self.targets < 0:
            raise ValueError("targets cannot be negative")
        object.__setattr__(self, "findings", tuple(sorted(self.findings, key=_sort_key)))
        if not self.version:
            from pipewarden import __version__

            object.__setattr__(self, "version", __version__)

    @classmethod
    def build(cls, *, command: str, findings: Iterable[Finding], targets: int) -> Report:
        return cls(command=command, findings=tuple(findings), targets=targets)

    @property
    def max_severity(self) -> Severity | None:
        """The worst severity found, or None for a clean report."""
        return max((f.severity for f in self.findings), default=None)

    def counts(self) -> dict[str, int]:
        """Findings per severity label, every label present (zero included)."""
        counter = Counter(f.severity for f in self.findings)
        return {s.label: counter.get(s, 0) for s in sorted(Severity, reverse=True)}

    def at_or_above(self, threshold: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= threshold)

    def exit_code(self, fail_on: Severity) -> int:
        """0 when nothing is at or above `fail_on`, else 1 (the CLI's contract)."""
        return 1 if self.at_or_above(fail_on) else 0

    def to_dict(self) -> dict[str, Any]:
        worst = self.max_severity
        return {
            "tool": self.tool,
            "version": self.version,
            "command": self.command,
            "findings": [f.to_dict() for f in self.findings],
            "summary": {
                "targets": self.targets,
                "findings_by_severity": self.counts(),
                "max_severity": worst.label if worst is not None else None,
            },
        }

    def render(self, fmt: str) -> str:
        """Render as ``text``, ``json``, ``sarif`` or ``html``."""
        from pipewarden.findings._renderers import get_renderer

        return get_renderer(fmt).render(self)
