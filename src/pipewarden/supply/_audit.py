"""The dependency audit: declared dependencies against a vulnerability source, fail closed.

Findings:

- ``PW-DEPS-101`` a pinned version a published advisory affects (its id and aliases merged into one
  finding, the advisory's severity word or else its CVSS v3 rating, and the smallest upgrade that
  clears every advisory of the package);
- ``PW-DEPS-102`` a malicious package (an OSV ``MAL-`` record): critical, whatever the version;
- ``PW-DEPS-103`` a dependency that could not be audited: its version is not PEP 440, or it comes from a
  URL or a local path, or the source could not answer for it. Never reported as clean;
- ``PW-DEPS-201`` not pinned to one version: what gets installed is unknown, so it cannot be audited
  either (high);
- ``PW-DEPS-202`` pinned without hashes: the bytes installed are not checked (medium);
- ``PW-DEPS-301`` a name one slip away from a popular package's (see `_typosquat`).

Every report names the source and, for a database, its age.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from packaging.version import Version

from pipewarden.findings import Finding, Location, Report, Severity
from pipewarden.supply._cvss import base_score, severity_of
from pipewarden.supply._database import Lookup, VulnerabilitySource
from pipewarden.supply._osv import Record, UnreadableVersion, public_version
from pipewarden.supply._redact import redact_urls
from pipewarden.supply._requirements import Dependency
from pipewarden.supply._typosquat import popular_names, squat_target

__all__ = ["DEPS_RULES", "audit"]

DEPS_RULES = {
    "PW-DEPS-101": (Severity.HIGH, "known vulnerability in a pinned dependency"),
    "PW-DEPS-102": (Severity.CRITICAL, "malicious package"),
    "PW-DEPS-103": (Severity.HIGH, "dependency could not be audited"),
    "PW-DEPS-201": (Severity.HIGH, "dependency not pinned to one version"),
    "PW-DEPS-202": (Severity.MEDIUM, "pinned without hashes"),
    "PW-DEPS-301": (Severity.HIGH, "name looks like a typosquat of a popular package"),
    "PW-DEPS-200": (Severity.INFO, "dependencies audited"),
}
_GHSA_SEVERITY = {
    "LOW": Severity.LOW,
    "MODERATE": Severity.MEDIUM,
    "HIGH": Severity.HIGH,
    "CRITICAL": Severity.CRITICAL,
}


def _severity(record: Record) -> Severity:
    """The advisory's own severity word when it has one, else its CVSS v3 vector's rating; high when it
    gives neither (unknown is not low)."""
    if record.malicious:
        return Severity.CRITICAL
    if record.level.upper() in _GHSA_SEVERITY:
        return _GHSA_SEVERITY[record.level.upper()]
    scores = [base_score(vector) for kind, vector in record.severity if kind.startswith("CVSS_V3")]
    known = [s for s in scores if s is not None]
    return severity_of(max(known)) if known else Severity.HIGH


def _where(dep: Dependency) -> Location:
    path, _, line = dep.source.rpartition(":")
    return Location(
        path=path or dep.source, member=f"line {line}" if line.isdigit() else None, package=dep.name
    )


def _finding(
    rule: str,
    dep: Dependency,
    message: str,
    evidence: dict[str, Any],
    *,
    severity: Severity | None = None,
    references: tuple[str, ...] = (),
) -> Finding:
    default, title = DEPS_RULES[rule]
    return Finding(
        rule_id=rule,
        severity=severity or default,
        title=title,
        message=f"{dep.name}{'==' + dep.pinned if dep.pinned else ''}: {message}",
        location=_where(dep),
        evidence={"package": dep.name, "version": dep.pinned, "declared_in": dep.source, **evidence},
        references=references,
    )


def smallest_fix(records: Sequence[Record], name: str, version: Version) -> Version | None:
    """The lowest fixed version above `version` that no record affects, if any record names one."""
    candidates = sorted({f for r in records for f in r.fixes_after(name, version)})
    for candidate in candidates:
        if not any(r.affects(name, candidate) for r in records):
            return candidate
    return None


def audit(
    dependencies: Sequence[Dependency],
    source: VulnerabilitySource,
    *,
    now: datetime | None = None,
    popular: frozenset[str] | None = None,
) -> Report:
    """Audit `dependencies` against `source`; see the module docstring for what is reported. `popular` is
    the list of names typosquats imitate (the shipped list when None)."""
    when = now or datetime.now(UTC)
    known = popular if popular is not None else popular_names()
    wanted = [d for d in dependencies if not d.constraint]
    names = sorted({d.key for d in wanted})
    lookup: Lookup = source.lookup(names)
    findings: list[Finding] = []
    audited = 0
    for dep in wanted:
        records = lookup.records.get(dep.key)
        malicious = [r for r in records or () if r.malicious and not r.withdrawn]
        if malicious:
            findings.append(
                _finding(
                    "PW-DEPS-102",
                    dep,
                    f"{malicious[0].id}: {malicious[0].summary or 'reported as malicious'}; remove it",
                    {"advisories": [r.id for r in malicious]},
                    references=tuple(r.id for r in malicious),
                )
            )
        squat = squat_target(dep.name, known)
        if squat is not None:
            findings.append(
                _finding(
                    "PW-DEPS-301",
                    dep,
                    f"close to the popular package {squat[0]!r} ({squat[1]}); check it is the one you meant",
                    {"imitates": squat[0], "how": squat[1]},
                )
            )
        if dep.note:
            note = redact_urls(dep.note)  # a URL's credentials never reach a report
            findings.append(_finding("PW-DEPS-103", dep, note, {"reason": "not a released version"}))
            continue
        if dep.pinned is None:
            findings.append(
                _finding(
                    "PW-DEPS-201",
                    dep,
                    f"'{dep.specifier or 'any version'}' lets the installer choose; pin it with == "
                    "(a lock file or pip-compile) so that what is audited is what is installed",
                    {"specifier": dep.specifier},
                )
            )
            continue
        try:
            version = public_version(dep.pinned)
        except UnreadableVersion as exc:
            findings.append(_finding("PW-DEPS-103", dep, str(exc), {"reason": "version not PEP 440"}))
            continue
        if records is None:
            findings.append(
                _finding(
                    "PW-DEPS-103", dep, f"{lookup.source} gave no answer for it", {"reason": "no answer"}
                )
            )
            continue
        audited += 1
        hits = [r for r in records if not r.malicious and r.affects(dep.name, version)]
        if hits:
            fix = smallest_fix(records, dep.name, version)
            ids = sorted({i for r in hits for i in r.ids()})
            findings.append(
                _finding(
                    "PW-DEPS-101",
                    dep,
                    f"{', '.join(r.id for r in hits)}"
                    + (f"; upgrade to {dep.name}=={fix}" if fix else "; no fixed version is published"),
                    {
                        "advisories": [r.id for r in hits],
                        "aliases": ids,
                        "fix": str(fix) if fix else None,
                        "summaries": [r.summary for r in hits][:10],
                    },
                    severity=max(_severity(r) for r in hits),
                    references=tuple(ids),
                )
            )
        if not dep.hashes and dep.direct:
            findings.append(
                _finding(
                    "PW-DEPS-202",
                    dep,
                    "no --hash: the installer does not check the bytes it downloads",
                    {},
                )
            )
    age_days = round((when - lookup.as_of).total_seconds() / 86400, 1) if lookup.as_of else None
    findings.append(
        Finding(
            rule_id="PW-DEPS-200",
            severity=Severity.INFO,
            title=DEPS_RULES["PW-DEPS-200"][1],
            message=f"{len(wanted)} dependencies, {audited} audited against {lookup.source}"
            + (f" (newest record {age_days} days old)" if age_days is not None else ""),
            location=Location(path=wanted[0].source.rpartition(":")[0] if wanted else "-"),
            evidence={
                "dependencies": len(wanted),
                "audited": audited,
                "source": lookup.source,
                "database_age_days": age_days,
            },
        )
    )
    return Report.build(command="deps", findings=findings, targets=len(wanted))
