"""Accepted findings: each ignore names what it ignores, why, and until when.

In ``pyproject.toml`` or a policy file (TOML, the same table)::

    [[tool.pipewarden.ignore]]
    id = "GHSA-xxxx-xxxx-xxxx"      # an advisory id or any of its aliases, or a rule id (PW-DEPS-202)
    package = "torch"              # optional: only for this package
    reason = "the vulnerable loader is never called; see ADR-12"
    expires = 2027-01-31           # a date; from that day on the finding is back

An ignore without a reason or an expiry is an error: an exception nobody has to look at again is how
findings get forgotten. An expired ignore no longer applies, and the report says it expired
(``PW-DEPS-901``), so the finding it hid comes back with a reminder why.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location, Report, Severity
from pipewarden.supply._osv import normalize

__all__ = ["Ignore", "apply_ignores", "load_ignores"]


@dataclass(frozen=True, slots=True)
class Ignore:
    id: str
    reason: str
    expires: date
    package: str | None
    source: str

    def matches(self, finding: Finding) -> bool:
        evidence = finding.evidence
        names = {finding.rule_id, *evidence.get("advisories", []), *evidence.get("aliases", [])}
        if self.id not in names:
            return False
        return self.package is None or normalize(str(evidence.get("package", ""))) == normalize(self.package)


def load_ignores(path: Path) -> list[Ignore]:
    """The ignores of a pyproject.toml or policy file (none when it has no ``[tool.pipewarden]``)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such policy file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    entries: Any = ((doc.get("tool", {}) or {}).get("pipewarden", {}) or {}).get("ignore", [])
    if not isinstance(entries, list):
        raise ConfigError(
            f"{path}: [tool.pipewarden] ignore must be an array of tables ([[tool.pipewarden.ignore]])"
        )
    found = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: ignore #{number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table")
        unknown = sorted(set(entry) - {"id", "package", "reason", "expires"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
        ident, reason, expires = entry.get("id"), entry.get("reason"), entry.get("expires")
        if not isinstance(ident, str) or not ident.strip():
            raise ConfigError(f"{where}: needs an id (an advisory id or alias, or a rule id)")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where} ({ident}): needs a reason")
        if isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires)
            except ValueError:
                raise ConfigError(
                    f"{where} ({ident}): expires {expires!r} is not a date (YYYY-MM-DD)"
                ) from None
        if not isinstance(expires, date):
            raise ConfigError(f"{where} ({ident}): needs an expiry date (expires = YYYY-MM-DD)")
        package = entry.get("package")
        if package is not None and not isinstance(package, str):
            raise ConfigError(f"{where} ({ident}): package must be a name")
        found.append(Ignore(ident.strip(), reason.strip(), expires, package, f"{path}#{number}"))
    return found


def _expired(ignore: Ignore) -> Finding:
    scope = f" for {ignore.package}" if ignore.package else ""
    return Finding(
        rule_id="PW-DEPS-901",
        severity=Severity.MEDIUM,
        title="ignore expired",
        message=f"the ignore of {ignore.id}{scope} expired on {ignore.expires.isoformat()} and no longer "
        f"applies (it said: {ignore.reason})",
        location=Location(path=ignore.source.rpartition("#")[0]),
        evidence={"id": ignore.id, "package": ignore.package, "expired": ignore.expires.isoformat()},
    )


def apply_ignores(report: Report, ignores: Sequence[Ignore], *, today: date) -> Report:
    """`report` without the findings live ignores accept, plus a reminder for each expired ignore."""
    live = [i for i in ignores if i.expires > today]
    expired = [i for i in ignores if i.expires <= today]
    kept: list[Finding] = []
    ignored = 0
    for finding in report.findings:
        if finding.rule_id.endswith("-200"):
            kept.append(finding)
            continue
        if any(i.matches(finding) for i in live):
            ignored += 1
            continue
        kept.append(finding)
    kept.extend(_expired(ignore) for ignore in expired)
    summary = [f for f in kept if f.rule_id.endswith("-200")]
    if summary:
        first = summary[0]
        updated = Finding(
            rule_id=first.rule_id,
            severity=first.severity,
            title=first.title,
            message=first.message + (f"; {ignored} finding(s) ignored by policy" if ignored else ""),
            location=first.location,
            evidence={**first.evidence, "ignored": ignored},
        )
        kept = [updated if f is first else f for f in kept]
    return Report.build(command=report.command, findings=kept, targets=report.targets)
