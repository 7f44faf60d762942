"""SARIF 2.1.0 (OASIS standard), as code-scanning services ingest it.

Spec: https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipewarden.findings._model import Severity
from pipewarden.findings._renderers._interface import Renderer

if TYPE_CHECKING:
    from pipewarden.findings._model import Finding, Report

_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# SARIF has three result levels; map our five severities onto them (§3.27.10).
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# The "security-severity" property code-scanning services sort by (0.0-10.0).
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def _uri(path: str) -> str:
    pure = PurePath(path)
    if pure.is_absolute():
        return "file://" + quote(pure.as_posix())
    return quote(pure.as_posix())


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    loc = finding.location
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(loc.path)}}
    if loc.offset is not None:
        physical["region"] = {"byteOffset": loc.offset}
    elif loc.row is not None:
        physical["region"] = {"startLine": max(loc.row, 1)}
    location: dict[str, Any] = {"physicalLocation": physical}
    if loc.member:
        location["logicalLocations"] = [{"fullyQualifiedName": loc.member, "kind": "member"}]
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.title}: {finding.message}"},
        "locations": [location],
        "properties": {
            "severity": finding.severity.label,
            "evidence": dict(finding.evidence),
            "references": list(finding.references),
        },
    }


class SarifRenderer(Renderer):
    name = "sarif"
    suffix = ".sarif"

    def render(self, report: Report) -> str:
        rules: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        for finding in report.findings:
            if finding.rule_id in index:
                # A rule's recorded severity is the worst it reached in this run.
                rule = rules[index[finding.rule_id]]
                if _SECURITY_SEVERITY[finding.severity] > rule["properties"]["security-severity"]:
                    rule["properties"]["security-severity"] = _SECURITY_SEVERITY[finding.severity]
                continue
            index[finding.rule_id] = len(rules)
            rules.append(
                {
                    "id": finding.rule_id,
                    "name": finding.title,
                    "shortDescription": {"text": finding.title},
                    "properties": {
                        "tags": list(dict.fromkeys(["security", *finding.references])),
                        "security-severity": _SECURITY_SEVERITY[finding.severity],
                    },
                }
            )
        document = {
            "$schema": _SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": report.tool,
                            "version": report.version,
                            "rules": rules,
                        }
                    },
                    "automationDetails": {"id": f"{report.tool}/{report.command}/"},
                    "results": [_result(f, index[f.rule_id]) for f in report.findings],
                    "properties": {"targets": report.targets, "counts": report.counts()},
                }
            ],
        }
        return json.dumps(document, indent=2, default=str) + "\n"
