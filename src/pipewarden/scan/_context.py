"""Per-target scan state: where findings go, limits and the time budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipewarden.findings import Finding, Location, Severity
from pipewarden.scan._limits import ScanLimits
from pipewarden.scan._policy import ScanPolicy
from pipewarden.scan._rules import RULES

__all__ = ["LimitHit", "ScanContext"]


class LimitHit(Exception):
    """A scan limit was reached; the message says which and where."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit


@dataclass
class ScanContext:
    """Collects the findings for one top-level target (a file given or found in a folder)."""

    path: str
    policy: ScanPolicy
    limits: ScanLimits
    deadline: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    decompressed: int = 0
    members: int = 0
    formats: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.limits.max_seconds

    def add(
        self,
        rule_id: str,
        *,
        member: str | None,
        message: str,
        offset: int | None = None,
        evidence: dict[str, Any] | None = None,
        severity: Severity | None = None,
        title: str | None = None,
    ) -> None:
        rule = RULES[rule_id]
        self.findings.append(
            Finding(
                rule_id=rule.id,
                severity=severity if severity is not None else rule.severity,
                title=title or rule.title,
                message=message,
                location=Location(path=self.path, member=member or None, offset=offset),
                evidence=evidence or {},
                references=rule.references,
            )
        )

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitHit("max_seconds", f"scan took longer than {self.limits.max_seconds:g} s")

    def count_decompressed(self, n: int) -> None:
        self.decompressed += n
        if self.decompressed > self.limits.max_decompressed_bytes:
            raise LimitHit(
                "max_decompressed_bytes",
                f"more than {self.limits.max_decompressed_bytes} bytes decompressed",
            )

    def count_member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise LimitHit("max_members", f"more than {self.limits.max_members} archive members")
