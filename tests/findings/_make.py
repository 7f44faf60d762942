"""Builders shared by the findings tests."""

from __future__ import annotations

from typing import Any

from pipewarden.findings import Finding, Location, Severity


def make(
    rule_id: str = "PW-TEST-001",
    severity: Severity = Severity.HIGH,
    *,
    path: str = "model.pkl",
    member: str | None = None,
    offset: int | None = None,
    row: int | None = None,
    title: str = "a title",
    message: str = "a message",
    evidence: dict[str, Any] | None = None,
    references: tuple[str, ...] = (),
) -> Finding:
    return Finding(
        rule_id=rule_id,
        severity=severity,
        title=title,
        message=message,
        location=Location(path, member=member, offset=offset, row=row),
        evidence=evidence or {},
        references=references,
    )
