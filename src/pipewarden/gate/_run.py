"""`run_gate`: every check the policy names, over one tree, merged into one report and one verdict."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipewarden.errors import ConfigError, PipewardenError
from pipewarden.findings import Finding, Location, Report, Severity
from pipewarden.gate._policy import DataStep, GatePolicy
from pipewarden.gate._tree import Walk, relative_to, tree_files

if TYPE_CHECKING:
    from pipewarden.workspace import Workspace

__all__ = ["GATE_RULES", "GateResult", "StepResult", "run_gate"]

logger = logging.getLogger(__name__)

_NOT_A_MODEL = "PW-SCAN-209"

#: The gate's own findings; every other finding in its report comes from the check that made it.
GATE_RULES: dict[str, tuple[Severity, str]] = {
    "PW-CI-101": (Severity.CRITICAL, "a check could not run"),
    "PW-CI-200": (Severity.INFO, "gate summary"),
}


@dataclass(frozen=True, slots=True)
class StepResult:
    """One check's report and the threshold the policy gives it. A check that could not run has an
    `error` (and a PW-CI-101 finding in its report) and fails the gate whatever its threshold."""

    name: str
    report: Report
    fail_on: Severity
    error: str | None = None

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return self.report.at_or_above(self.fail_on)

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        return "fail" if self.blocking else "pass"


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate's outcome: each check's result, the merged report and the exit code."""

    steps: tuple[StepResult, ...]
    skipped: tuple[tuple[str, str], ...]
    report: Report
    not_scanned: tuple[tuple[str, str], ...] = ()

    @property
    def passed(self) -> bool:
        return all(step.verdict == "pass" for step in self.steps)

    @property
    def exit_code(self) -> int:
        """0 when every check passed its policy's threshold, else 1."""
        return 0 if self.passed else 1

    def summary_lines(self) -> list[str]:
        """One line per check, for a person reading a CI log."""
        lines = []
        width = max([len(s.name) for s in self.steps] + [len(name) for name, _ in self.skipped] + [8])
        for step in self.steps:
            worst = step.report.max_severity
            detail = (
                step.error
                if step.error is not None
                else f"{len(step.report.findings)} findings, {len(step.blocking)} at or above "
                f"{step.fail_on.label}" + (f" (worst {worst.label})" if worst is not None else "")
            )
            lines.append(f"{step.verdict.upper():5} {step.name:{width}} {detail}")
        lines.extend(f"{'OFF':5} {name:{width}} {why}" for name, why in self.skipped)
        if self.not_scanned:
            shown = ", ".join(f"{path} ({why})" for path, why in self.not_scanned[:5])
            more = f" and {len(self.not_scanned) - 5} more" if len(self.not_scanned) > 5 else ""
            lines.append(f"{'NOTE':5} folders the model scan did not enter: {shown}{more}")
        lines.append("gate: " + ("passed" if self.passed else "FAILED"))
        return lines


def run_gate(
    root: Path,
    *,
    policy: GatePolicy | None = None,
    workspace: Workspace | None = None,
    now: datetime | None = None,
    record_posture: Callable[[Workspace, Callable[[], Report]], Report] | None = None,
) -> GateResult:
    """Run the policy's checks over the tree at `root`: the model scan, the dependency audit, the
    secrets scan, each data contract check and, when a workspace is given (here or in the policy), the
    deployment's posture. Paths in findings are made relative to `root`, so a code-scanning service can
    place them. Raises `ConfigError` for a policy that points at what does not exist (a database, a
    baseline, a workspace); any other failure of a check is a PW-CI-101 finding and fails the gate.
    `record_posture(workspace, run)` runs the posture check as the caller, authorized and recorded (the
    CLI passes `run_posture_recorded`); without it the check runs as a library call.

    >>> result = run_gate(Path("."), policy=GatePolicy.load(Path("pipewarden-ci.yaml")))  # doctest: +SKIP
    >>> result.exit_code
    0
    """
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder to check")
    policy = policy or GatePolicy()
    when = now or datetime.now(UTC)
    steps: list[StepResult] = []
    skipped: list[tuple[str, str]] = []
    planned: list[tuple[str, Severity, Callable[[], Report]]] = []
    walk = Walk()
    _check_paths(root, policy)

    if policy.scan.enabled:
        planned.append(("scan", policy.scan.fail_on, lambda: _scan(root, policy, walk)))
    else:
        skipped.append(("scan", "off in the policy"))
    if policy.deps.enabled:
        planned.append(("deps", policy.deps.fail_on, lambda: _deps(root, policy, when)))
    else:
        skipped.append(("deps", "off in the policy"))
    if policy.secrets.enabled:
        planned.append(("secrets", policy.secrets.fail_on, lambda: _secrets(root, policy)))
    else:
        skipped.append(("secrets", "off in the policy"))
    planned.extend((f"data:{d.name}", d.fail_on, _data_check(root, d)) for d in policy.data)
    if not policy.data:
        skipped.append(("data", "the policy names no data contract"))
    posture_workspace = workspace
    if posture_workspace is None and policy.posture.enabled and policy.posture.workspace is not None:
        from pipewarden.workspace import Workspace

        posture_workspace = Workspace.open(_inside(root, policy.posture.workspace, "posture.workspace"))
    if posture_workspace is not None and policy.posture.enabled:
        opened = posture_workspace
        planned.append(
            (
                "posture",
                policy.posture.fail_on,
                lambda: (
                    record_posture(opened, lambda: _posture(root, policy, opened, when))
                    if record_posture is not None
                    else _posture(root, policy, opened, when)
                ),
            )
        )
    else:
        skipped.append(("posture", "no workspace given" if policy.posture.enabled else "off in the policy"))

    if not planned:
        raise ConfigError(f"{policy.source}: every check is off; a gate that checks nothing cannot pass")
    for name, fail_on, run in planned:
        logger.info("gate: running %s", name)
        try:
            report = run()
        except Exception as exc:  # any failure of one check is its finding, not the gate's end
            logger.warning("gate: %s could not run", name, exc_info=not isinstance(exc, PipewardenError))
            detail = str(exc) if isinstance(exc, PipewardenError) else f"{type(exc).__name__}: {exc}"
            steps.append(_could_not_run(name, fail_on, detail))
            continue
        steps.append(StepResult(name, _relocated(root, report), fail_on))

    merged = [f for step in steps for f in step.report.findings]
    merged.append(_summary(root, policy, steps, skipped, walk))
    report = Report.build(command="ci", findings=merged, targets=sum(step.report.targets for step in steps))
    return GateResult(
        steps=tuple(steps),
        skipped=tuple(skipped),
        report=report,
        not_scanned=tuple(sorted(walk.skipped.items())),
    )


def _check_paths(root: Path, policy: GatePolicy) -> None:
    """Every path the policy names exists, before any check runs: a policy pointing at nothing is a
    configuration error (exit 2), not a check that could not run."""
    named: list[tuple[str | None, str]] = [
        (p, "scan.paths") for p in policy.scan.paths if policy.scan.enabled
    ]
    if policy.scan.enabled:
        named.append((policy.scan.allow, "scan.allow"))
    if policy.deps.enabled:
        named += [(p, "deps.paths") for p in policy.deps.paths]
        named += [(policy.deps.db, "deps.db"), (policy.deps.ignores, "deps.ignores")]
    if policy.secrets.enabled:
        named.append((policy.secrets.baseline, "secrets.baseline"))
    for step in policy.data:
        named += [(step.data, f"data {step.name!r} data"), (step.contract, f"data {step.name!r} contract")]
    if policy.posture.enabled:
        named += [(policy.posture.tls_cert, "posture.tls_cert"), (policy.posture.ca, "posture.ca")]
        named.append((policy.posture.osv_db, "posture.osv_db"))
    for relative, key in named:
        if relative is not None:
            _inside(root, relative, key)


def _inside(root: Path, relative: str, key: str) -> Path:
    path = root / relative
    if not path.exists():
        raise ConfigError(f"{relative}: no such file or folder (the policy's {key}, relative to {root})")
    return path


def _scan(root: Path, policy: GatePolicy, walk: Walk) -> Report:
    from pipewarden.scan import ScanPolicy, scan_path

    patterns = (*policy.exclude, *policy.scan.exclude)
    for start in policy.scan.paths:
        tree_files(root, _inside(root, start, "scan.paths"), patterns, walk)
    files = walk.files
    allow = policy.scan.allow
    scan_policy = ScanPolicy.from_file(_inside(root, allow, "scan.allow")) if allow else None
    if not files:
        return Report.build(command="scan", findings=(), targets=0)
    report = scan_path(*sorted(set(files)), policy=scan_policy, assume_model=False)
    # In a source tree nearly every file is not a model: the scan's one note per such file
    # (PW-SCAN-209) would bury the report, so the gate keeps the count, not the notes.
    kept = [f for f in report.findings if f.rule_id != _NOT_A_MODEL]
    return Report(command=report.command, findings=tuple(kept), targets=report.targets)


def _deps(root: Path, policy: GatePolicy, when: datetime) -> Report:
    from pipewarden.supply import (
        OfflineDatabase,
        OsvApi,
        VulnerabilitySource,
        apply_ignores,
        audit,
        load_ignores,
        read_dependencies,
    )

    step = policy.deps
    deps = [d for p in step.paths for d in read_dependencies(_inside(root, p, "deps.paths"))]
    source: VulnerabilitySource = (
        OfflineDatabase(_inside(root, step.db, "deps.db")) if step.db else OsvApi(step.osv_url)
    )
    report = audit(deps, source, now=when)
    ignores = _inside(root, step.ignores, "deps.ignores") if step.ignores else None
    if ignores is None and (root / "pyproject.toml").is_file():
        ignores = root / "pyproject.toml"
    if ignores is not None:
        report = apply_ignores(report, load_ignores(ignores), today=date.fromordinal(when.toordinal()))
    return report


def _secrets(root: Path, policy: GatePolicy) -> Report:
    from pipewarden.supply import find_secrets

    step = policy.secrets
    baseline = _inside(root, step.baseline, "secrets.baseline") if step.baseline else None
    return find_secrets(root, baseline=baseline, exclude=(*policy.exclude, *step.exclude))


def _data_check(root: Path, step: DataStep) -> Callable[[], Report]:
    def run() -> Report:
        from pipewarden.data import Contract, check

        contract = Contract.load(_inside(root, step.contract, f"data {step.name!r} contract"))
        return check(_inside(root, step.data, f"data {step.name!r} data"), contract=contract).report

    return run


def _posture(root: Path, policy: GatePolicy, workspace: Workspace, when: datetime) -> Report:
    from pipewarden.posture import check_posture

    step = policy.posture

    def optional(value: str | None, key: str) -> Path | None:
        return _inside(root, value, key) if value else None

    return check_posture(
        workspace,
        now=when,
        url=step.url,
        tls_cert=optional(step.tls_cert, "posture.tls_cert"),
        ca=optional(step.ca, "posture.ca"),
        osv_db=optional(step.osv_db, "posture.osv_db"),
        probe_sinks=step.probe_sinks,
    )


def _relocated(root: Path, report: Report) -> Report:
    """The report with every finding's path relative to the tree, where it lies inside it."""
    findings = []
    for finding in report.findings:
        path = finding.location.path
        # Only a file that exists is moved; a URL or a name that is not a path stays as it is.
        relative = relative_to(root, Path(path)) if path and os.path.lexists(path) else path
        findings.append(
            finding if relative == path else finding.relocated(_moved(finding.location, relative))
        )
    return Report(command=report.command, findings=tuple(findings), targets=report.targets)


def _moved(location: Location, path: str) -> Location:
    return Location(
        path=path,
        member=location.member,
        offset=location.offset,
        row=location.row,
        column=location.column,
        package=location.package,
    )


def _could_not_run(name: str, fail_on: Severity, error: str) -> StepResult:
    severity, title = GATE_RULES["PW-CI-101"]
    finding = Finding(
        rule_id="PW-CI-101",
        severity=severity,
        title=title,
        message=f"{name}: {error}; what cannot be checked does not pass",
        location=Location(path="."),
        evidence={"check": name, "error": error},
    )
    return StepResult(name, Report.build(command=name, findings=[finding], targets=0), fail_on, error)


def _summary(
    root: Path, policy: GatePolicy, steps: list[StepResult], skipped: list[tuple[str, str]], walk: Walk
) -> Finding:
    checks: dict[str, Any] = {
        step.name: {
            "verdict": step.verdict,
            "fail_on": step.fail_on.label,
            "findings": len(step.report.findings),
            "blocking": len(step.blocking),
            "targets": step.report.targets,
        }
        for step in steps
    }
    for name, why in skipped:
        checks[name] = {"verdict": "off", "why": why}
    failed = [s.name for s in steps if s.verdict != "pass"]
    severity, title = GATE_RULES["PW-CI-200"]
    return Finding(
        rule_id="PW-CI-200",
        severity=severity,
        title=title,
        message=(f"gate failed: {', '.join(failed)}" if failed else f"gate passed: {len(steps)} checks")
        + f" (policy {policy.source})",
        location=Location(path="."),
        evidence={
            "passed": not failed,
            "policy": policy.source,
            "checks": checks,
            "root": root.name,
            "folders_not_scanned": dict(sorted(walk.skipped.items())),
        },
    )
