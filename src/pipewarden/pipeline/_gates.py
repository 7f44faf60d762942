"""The gates: each checks one input or output of a stage and says pass, warn, quarantine or block.

A gate reads the file in front of it (an input fetched and verified from the store, or an output the
stage wrote), runs one of pipewarden's checks on it and decides by its policy:

- ``block``: findings at or above `fail_on` stop the stage, and every stage after it;
- ``quarantine``: rows with such findings are set aside (written to the run's quarantine folder) and
  the stage goes on with the rest; a file that is not a table (a model) is set aside whole, so nothing
  downstream gets it; a finding no row carries (a schema change, a label shift) still blocks;
- ``warn``: findings are recorded and the stage goes on with the file as it was.

A gate that cannot run (an unreadable file, a missing contract) blocks, whatever its policy: fail closed.
Rows are named by their number in the table the stage first received (0-based), so a row set aside by
the contract check and the rows the screen sees next are counted in one numbering.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location, Report, Severity
from pipewarden.pipeline._spec import GateSpec, resolve_callable

if TYPE_CHECKING:
    from pipewarden.store import Artifact, GuardedStore
    from pipewarden.workspace import Workspace

__all__ = ["GATE_ACTIONS", "GateResult", "Subject", "run_gate"]

#: The action each gate is authorized as, on the resource it checks.
GATE_ACTIONS = {
    "contract": "data.check",
    "screen": "data.screen",
    "scan": "scan.run",
    "deps": "deps.audit",
    "signature": "artifact.verify",
    "guard": "model.predict",
    "custom": "data.check",
}
_TABLES = {".csv", ".tsv", ".parquet", ".pq", ".jsonl"}
# Table-level data rules that setting rows aside resolves: a duplicate flood shrinks to the allowance.
_RESOLVED_BY_ROWS = {"PW-DATA-113", "PW-DATA-100", "PW-DATA-200", "PW-PIPE-102"}


@dataclass(slots=True)
class Subject:
    """What a gate checks: a local file, the artifact it came from (if any), and for a table the number
    of each of its rows in the table as first received."""

    name: str
    path: Path
    resource: str
    artifact: Artifact | None = None
    rows: np.ndarray | None = None  # original row numbers, in the file's order
    withheld: bool = False
    aside: set[int] = field(default_factory=set)  # original row numbers earlier gates set aside

    @property
    def is_table(self) -> bool:
        return self.path.suffix.lower() in _TABLES


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict: ``passed``, ``warned``, ``quarantined``, ``blocked`` or ``error``."""

    stage: str
    gate: str
    type: str
    on: str
    policy: str
    verdict: str
    report: Report
    message: str
    rows: int | None = None
    quarantined: tuple[int, ...] = ()
    quarantine_file: Path | None = None
    #: Scores of the rows a check flagged, by detector (the screen), or of every row (the guard).
    scores: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: MappingProxyType({}))
    #: Planted rows this gate was expected to catch and let through (None: nothing was expected).
    missed: tuple[int, ...] | None = None

    @property
    def stops(self) -> bool:
        return self.verdict in ("blocked", "error")

    @property
    def met(self) -> bool:
        return not self.missed

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "type": self.type,
            "on": self.on,
            "policy": self.policy,
            "verdict": self.verdict,
            "message": self.message,
            "rows": self.rows,
            "quarantined": list(self.quarantined),
            "quarantine_file": str(self.quarantine_file) if self.quarantine_file else None,
            "missed": None if self.missed is None else list(self.missed),
            "findings": self.report.counts(),
        }


@dataclass(frozen=True, slots=True)
class GateEnv:
    """What a gate may use: the stage's store view (as its service account), the workspace, the
    pipeline's folder, the other subjects of the stage, and where to set rows aside."""

    stage: str
    store: GuardedStore
    workspace: Workspace
    root: Path
    subjects: Mapping[str, Subject]
    quarantine_dir: Path
    scratch: Path
    params: Mapping[str, Any]


# --- tables ------------------------------------------------------------------------------------------------


def _read_frame(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    # Every cell as its text, so the rows kept are written back exactly as they came.
    return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)


def _write_frame(frame: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(tmp, index=False)
    elif suffix == ".jsonl":
        frame.to_json(tmp, orient="records", lines=True)
    else:
        frame.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
    tmp.replace(path)


def _split(subject: Subject, drop: np.ndarray, env: GateEnv, gate: str, reasons: Mapping[int, str]) -> Path:
    """Write the rows in `drop` (positions in the file) to the quarantine folder with their original
    row numbers and reasons, and keep the rest in the subject's file; returns the quarantine file."""
    frame = _read_frame(subject.path)
    numbers = subject.rows if subject.rows is not None else np.arange(len(frame))
    out = frame.iloc[np.flatnonzero(drop)].copy()
    out.insert(0, "pw_row", numbers[drop])
    out.insert(1, "pw_reasons", [reasons.get(int(i), "") for i in np.flatnonzero(drop)])
    target = env.quarantine_dir / f"{env.stage}.{gate}.{subject.name}.csv"
    _private(out.to_csv(index=False).encode(), target)
    _write_frame(frame.iloc[np.flatnonzero(~drop)], subject.path)
    subject.aside.update(int(n) for n in numbers[drop])
    subject.rows = numbers[~drop]
    return target


def _private(data: bytes, target: Path) -> None:
    """Rows set aside hold the data itself: written 0600 in a 0700 folder, as the reports are."""
    from pipewarden.crypto import write_atomic

    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(target, data, mode=0o600)


def _row_rule(finding: Finding) -> bool:
    """Whether setting rows aside answers `finding`: a finding on a row, a per-row rule's summary, a
    duplicate flood, or a guard refusal."""
    from pipewarden.data import RULES

    if finding.location.row is not None or finding.rule_id in _RESOLVED_BY_ROWS:
        return True
    rule = RULES.get(finding.rule_id)
    return rule is not None and rule.per_row


def _original(subject: Subject, positions: Iterable[int]) -> tuple[int, ...]:
    found = [int(p) for p in positions]
    if subject.rows is None:
        return tuple(sorted(found))
    return tuple(sorted(int(subject.rows[p]) for p in found))


# --- the gates ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Checked:
    report: Report
    rows: int | None = None
    #: position in the file -> why, for rows with findings at or above the threshold (tables only)
    bad_rows: Mapping[int, str] = field(default_factory=dict)
    scores: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


def _row_reasons(report: Report, threshold: Severity) -> dict[int, str]:
    reasons: dict[int, str] = {}
    for f in report.at_or_above(threshold):
        if f.location.row is not None:
            reasons[f.location.row] = "; ".join(filter(None, [reasons.get(f.location.row), f.rule_id]))
    return reasons


def _contract(gate: GateSpec, subject: Subject, env: GateEnv) -> _Checked:
    from pipewarden.data import Contract, check

    contract_file = gate.settings.get("contract")
    if not isinstance(contract_file, str):
        raise ConfigError(f"gate {gate.label}: a contract gate needs 'contract: FILE'")
    from pipewarden.data import REASONS_COLUMN, ROW_COLUMN

    contract = Contract.load(env.root / contract_file)
    rejected = env.scratch / f"rejected.{gate.label}.csv"
    result = check(subject.path, contract=contract, quarantine=rejected)
    # Every rejected row, from the quarantine file: the report lists at most so many per rule.
    reasons: dict[int, str] = {}
    if result.quarantined:
        frame = _read_frame(rejected)
        reasons = {int(r): str(why) for r, why in zip(frame[ROW_COLUMN], frame[REASONS_COLUMN], strict=True)}
    return _Checked(result.report, result.rows, reasons)


def _screen(gate: GateSpec, subject: Subject, env: GateEnv) -> _Checked:
    from pipewarden.data import read_table, screen

    label = gate.settings.get("label")
    table = read_table(subject.path, label=str(label) if label else None)
    reference = gate.settings.get("reference")
    ref_table = None
    if isinstance(reference, str):
        source = env.subjects[reference].path if reference in env.subjects else env.root / reference
        ref_table = read_table(source, label=str(label) if label else None)
    checks = gate.settings.get("checks")
    result = screen(
        table,
        reference=ref_table,
        fpr=float(gate.settings.get("fpr", 0.01)),
        checks=list(checks) if isinstance(checks, list) else None,
        seed=int(gate.settings.get("seed", 0)),
    )
    scores: dict[str, list[float]] = {}
    for f in result.report.findings:
        if f.location.row is not None and isinstance(f.evidence.get("score"), int | float):
            scores.setdefault(f.rule_id, []).append(float(f.evidence["score"]))
    return _Checked(
        result.report,
        result.rows,
        _row_reasons(result.report, gate.fail_on),
        {k: tuple(v) for k, v in scores.items()},
    )


def _scan(gate: GateSpec, subject: Subject, env: GateEnv) -> _Checked:
    from pipewarden.scan import scan_path

    return _Checked(scan_path(subject.path, policy=env.workspace._scan_policy()))


def _deps(gate: GateSpec, subject: Subject, env: GateEnv) -> _Checked:
    from pipewarden.supply import OfflineDatabase, OsvApi, audit, read_dependencies

    db = gate.settings.get("db")
    source: Any = OfflineDatabase(env.root / db) if isinstance(db, str) else OsvApi()
    return _Checked(audit(read_dependencies(subject.path), source))


def _signature(gate: GateSpec, subject: Subject, env: GateEnv) -> _Checked:
    """The store verifies every read against the keys it trusts; this gate narrows that to the keys
    named here (the training pipeline's key, say), so a model any trusted writer could have put is not
    enough."""
    if subject.artifact is None:
        raise ConfigError(f"gate {gate.label}: {subject.name} is not a stored artifact; nothing signed it")
    allowed = gate.settings.get("signers")
    if not isinstance(allowed, list) or not allowed:
        # The workspace's own key signs every write to its store, whoever made it: accepting it by
        # default would check nothing. The keys must be named.
        raise ConfigError(f"gate {gate.label}: a signature gate needs 'signers: [KEY-ID, ...]'")
    keys = {str(k) for k in allowed}
    findings = []
    if subject.artifact.signer not in keys:
        findings.append(
            Finding(
                rule_id="PW-PIPE-101",
                severity=Severity.HIGH,
                title="input signed by a key the gate does not accept",
                message=f"{subject.artifact.ref}: signed by {subject.artifact.signer or 'nobody'}, "
                f"not by {', '.join(sorted(keys))}",
                location=Location(path=subject.artifact.ref),
                evidence={"signer": subject.artifact.signer, "accepted": sorted(keys)},
            )
        )
    return _Checked(Report.build(command="pipeline gate signature", findings=findings, targets=1))


def _guard(gate: GateSpec, subject: Subject, env: GateEnv) -> _Checked:
    from pipewarden.pipeline._serving import load_guarded_model

    model_input = gate.settings.get("model")
    if not isinstance(model_input, str) or model_input not in env.subjects:
        raise ConfigError(
            f"gate {gate.label}: a guard gate needs 'model: INPUT' naming the stage's model input"
        )
    model = env.subjects[model_input]
    if model.artifact is None:
        raise ConfigError(f"gate {gate.label}: {model_input} is not a stored model")
    served = load_guarded_model(env.store, model.artifact, model.path, scratch=env.scratch)
    frame = _read_frame(subject.path)
    import pandas as pd

    from pipewarden.guard import GuardPolicy

    numbers = frame[list(served.features)].apply(pd.to_numeric, errors="coerce")
    actions = gate.settings.get("actions")
    policy = GuardPolicy.of(dict(actions)) if isinstance(actions, dict) else served.guard.policy
    # No caller: a batch scored inside the pipeline is not a client querying the model, so the
    # query-pattern watch for extraction (which follows one caller over time) does not apply.
    result = served.guard.check_with(numbers, caller=None, policy=policy)
    refused = set(result.refused)
    reasons = {i: result.reason(i) for i in refused}
    findings = [
        f
        if f.location.row is None
        else replace(
            f,
            location=Location(path=subject.name, row=f.location.row),
            # A refused row is set aside (or blocks) whatever severity the guard gave its finding.
            severity=max(f.severity, gate.fail_on) if f.location.row in refused else f.severity,
        )
        for f in result.report().findings
    ]
    refusals = [
        Finding(
            rule_id="PW-PIPE-102",
            severity=max(gate.fail_on, Severity.MEDIUM),
            title="request refused by the inference guard",
            message=f"{subject.name} row {i}: {reasons[i]}",
            location=Location(path=subject.name, row=i),
        )
        for i in sorted(refused)
        if not any(f.location.row == i for f in findings)
    ]
    report = Report.build(command="pipeline gate guard", findings=[*findings, *refusals], targets=1)
    scores = {"guard score": tuple(float(s) for s in np.nan_to_num(result.score.astype(float), nan=0.0))}
    # The guard's refusals decide: a refused row is one the model must not answer.
    return _Checked(report, len(frame), reasons, scores)


def _custom(gate: GateSpec, subject: Subject, env: GateEnv) -> _Checked:
    name = gate.settings.get("check")
    if not isinstance(name, str):
        raise ConfigError(f"gate {gate.label}: a custom gate needs 'check: file.py:function'")
    func = resolve_callable(name, root=env.root, where=f"gate {gate.label}.check")
    params = gate.settings.get("params") or {}
    found = list(func(subject.path, params=dict(params) if isinstance(params, dict) else {}) or ())
    findings = [f for f in found if isinstance(f, Finding)]
    if len(findings) != len(found):
        raise ConfigError(f"gate {gate.label}: {name} must return Finding objects (or nothing)")
    return _Checked(Report.build(command=f"pipeline gate {gate.label}", findings=findings, targets=1))


_CHECKS: dict[str, Callable[[GateSpec, Subject, GateEnv], _Checked]] = {
    "contract": _contract,
    "screen": _screen,
    "scan": _scan,
    "deps": _deps,
    "signature": _signature,
    "guard": _guard,
    "custom": _custom,
}


def _renumbered(checked: _Checked, subject: Subject) -> _Checked:
    """Findings name rows in the table as the stage received it, whatever earlier gates set aside."""
    if subject.rows is None:
        return checked
    numbers = subject.rows

    def original(f: Finding) -> Finding:
        row = f.location.row
        if row is None or not 0 <= row < numbers.size:
            return f
        return f.relocated(replace(f.location, row=int(numbers[row])))

    report = replace(checked.report, findings=tuple(original(f) for f in checked.report.findings))
    return replace(checked, report=report)


def _error(gate: GateSpec, stage: str, subject: Subject, exc: Exception) -> GateResult:
    finding = Finding(
        rule_id="PW-PIPE-100",
        severity=Severity.CRITICAL,
        title="gate could not run",
        message=f"{subject.name}: the {gate.label} gate could not run ({type(exc).__name__}: {exc}); "
        "what cannot be checked does not pass",
        location=Location(path=subject.name),
    )
    return GateResult(
        stage=stage,
        gate=gate.label,
        type=gate.type,
        on=gate.on,
        policy=gate.policy,
        verdict="error",
        report=Report.build(command=f"pipeline gate {gate.label}", findings=[finding], targets=1),
        message=finding.message,
        missed=gate.catches,
    )


def run_gate(gate: GateSpec, subject: Subject, env: GateEnv) -> GateResult:
    """Run one gate on `subject` and apply its policy (changing the subject's file when rows are set
    aside). Never raises for what the check found or failed to do: that is in the verdict."""
    aside_before = set(subject.aside)
    try:
        checked = _CHECKS[gate.type](gate, subject, env)
    except Exception as exc:  # whatever stops a check, the gate fails closed
        return _error(gate, env.stage, subject, exc)
    checked = _renumbered(checked, subject)
    blocking = checked.report.at_or_above(gate.fail_on)
    row_level = subject.is_table and gate.type in ("contract", "screen", "guard")
    # Findings that setting rows aside does not answer (for a table); a file that is no table is set
    # aside whole instead.
    unresolved = [f for f in blocking if row_level and not _row_rule(f)]
    bad = np.zeros(checked.rows or 0, dtype=bool)
    for position in checked.bad_rows:
        if position < bad.size:
            bad[position] = True
    caught = _original(subject, np.flatnonzero(bad)) if row_level else ()
    quarantined: tuple[int, ...] = ()
    quarantine_file = None
    if gate.policy == "warn":
        verdict = "warned" if blocking else "passed"
    elif gate.policy == "block" or unresolved:
        verdict = "blocked" if blocking else "passed"
    elif not blocking:
        verdict = "passed"
    elif not row_level:
        verdict = "quarantined"
        quarantine_file = env.quarantine_dir / f"{env.stage}.{gate.label}.{subject.path.name}"
        _private(subject.path.read_bytes(), quarantine_file)
        subject.withheld = True
    elif bad.all():
        verdict = "blocked"  # nothing would be left to go on with
    else:
        quarantined = caught
        quarantine_file = _split(subject, bad, env, gate.label, checked.bad_rows)
        verdict = "quarantined"
    missed = None
    if gate.catches is not None:
        if row_level:
            # Caught by this gate, or set aside by an earlier gate of the stage; a planted row that is
            # not in the table at all is missed.
            missed = tuple(sorted(set(gate.catches) - set(caught) - aside_before))
        else:  # a whole file: caught when the gate stopped or set it aside
            missed = () if verdict in ("blocked", "quarantined") else gate.catches
    counts = checked.report.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
    message = f"{subject.name}: {verdict} ({summary}"
    if quarantined:
        message += f"; {len(quarantined)} rows set aside"
    message += ")"
    return GateResult(
        stage=env.stage,
        gate=gate.label,
        type=gate.type,
        on=gate.on,
        policy=gate.policy,
        verdict=verdict,
        report=checked.report,
        message=message,
        rows=checked.rows,
        quarantined=quarantined,
        quarantine_file=quarantine_file,
        scores=MappingProxyType(dict(checked.scores)),
        missed=missed,
    )
