"""Running a pipeline: the workspace and accounts made ready, stages in order, the monitor watching.

`run_pipeline(spec)` runs the stages in process, each after every stage it waits for, each as its own
service account behind its gates (`StageRun`). A stage whose upstream did not pass is skipped, and says
which. The workspace's monitor watches every event of the run and the alerts it raised are part of the
result. A run passes when every stage ended as expected (``passed`` for work; for a drill, the outcome
its planted attack must meet), every gate caught the rows it was expected to catch, and every alert the
pipeline expects was raised.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from pipewarden.errors import ConfigError
from pipewarden.findings import Severity
from pipewarden.identity import Grant
from pipewarden.pipeline._spec import AccountSpec, GateSpec, InputSpec, PipelineSpec, StageSpec
from pipewarden.pipeline._stage import StageResult, StageRun
from pipewarden.store import ArtifactRef

if TYPE_CHECKING:
    from pipewarden.events import Acting
    from pipewarden.workspace import Workspace

__all__ = ["FIRST_ADMIN", "Pipeline", "RunResult", "gate", "prepare_workspace", "run_pipeline"]

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
FIRST_ADMIN = "admin"
ADMIN_PASSWORD_FILE = "first-admin-password"  # noqa: S105  # pragma: allowlist secret  (a file name)


@dataclass(frozen=True, slots=True)
class RunResult:
    pipeline: str
    project: str
    run_id: str
    workspace: Path
    stages: tuple[StageResult, ...]
    alerts: tuple[Mapping[str, Any], ...]
    expected_alerts: tuple[str, ...]
    started: datetime
    finished: datetime
    report_dir: Path
    created_workspace: bool = False
    admin_password_file: Path | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def missing_alerts(self) -> tuple[str, ...]:
        raised = {a["rule_id"] for a in self.alerts}
        return tuple(r for r in self.expected_alerts if r not in raised)

    @property
    def passed(self) -> bool:
        return all(s.met for s in self.stages) and not self.missing_alerts

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "pipewarden.run/1",
            "pipeline": self.pipeline,
            "project": self.project,
            "run_id": self.run_id,
            "workspace": str(self.workspace),
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "exit_code": self.exit_code,
            "stages": [s.to_dict() for s in self.stages],
            "alerts": [dict(a) for a in self.alerts],
            "expected_alerts": list(self.expected_alerts),
            "missing_alerts": list(self.missing_alerts),
            "created_workspace": self.created_workspace,
            "notes": list(self.notes),
        }


# --- workspace and accounts ---------------------------------------------------------------------------


def _operator(ws: Workspace) -> Acting:
    from pipewarden.events import Acting, Actor, LocalOperator

    return Acting(
        actor=Actor(getpass.getuser(), "system", "pipeline"), events=ws.events(), authorizer=LocalOperator()
    )


def prepare_workspace(path: Path | None, *, create: bool) -> tuple[Workspace, bool, Path | None]:
    """The workspace at `path` (or the default place); with `create`, an embedded one made if none is
    there: SQLite, a local store, fresh keys, and a first administrator whose generated password is
    written to a 0600 file in the workspace (never printed). Returns (workspace, created, password file)."""
    from pipewarden.identity import Accounts
    from pipewarden.workspace import Workspace

    root = Workspace.locate(path)
    if (root / "config.yaml").exists():
        return Workspace.open(root), False, None
    if not create:
        raise ConfigError(
            f"{root}: no pipewarden workspace here; run 'pipewarden init', or set "
            "'workspace: {create: true}' in the pipeline file"
        )
    ws = Workspace.init(root)
    password = secrets.token_urlsafe(24)
    password_file = ws.root / ADMIN_PASSWORD_FILE
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    operator = _operator(ws)
    Accounts(ws.database(), events=ws.events()).bootstrap_admin(
        FIRST_ADMIN, password=password, actor=operator.actor
    )
    return ws, True, password_file


def _ensure_accounts(ws: Workspace, accounts: Sequence[AccountSpec]) -> list[str]:
    """Create the service accounts that do not exist, with their grants; an existing account must
    already hold every grant declared for it (a pipeline file never widens an account silently)."""
    from pipewarden.errors import IdentityError
    from pipewarden.identity import Access, Accounts, Policy

    book = Accounts(ws.database(), events=ws.events())
    policy = Policy.for_workspace(ws.root)
    access = Access(ws.database(), policy=policy, events=ws.events())
    for account in accounts:
        for grant in account.grants:
            try:
                policy.role(grant.role)
            except ConfigError as exc:
                raise ConfigError(f"account {account.name}: {exc}") from None
    operator = _operator(ws)
    notes = []
    for account in accounts:
        try:
            principal = book.get(account.name)
        except IdentityError:
            book.create_service(account.name, actor=operator.actor, grants=account.grants)
            notes.append(f"created service account {account.name}")
            continue
        if principal.kind != "service":
            raise ConfigError(f"account {account.name}: exists and is not a service account")
        held = {(g.role, g.scope) for g in access.subject(account.name, mfa=False).grants}
        missing = [g for g in account.grants if (g.role, g.scope) not in held]
        if missing:
            wanted = ", ".join(f"{g.role} at {g.scope}" for g in missing)
            raise ConfigError(
                f"account {account.name}: exists without {wanted}; grant it with 'pipewarden access grant' "
                "(a pipeline file does not widen an existing account)"
            )
    return notes


def _check_stage_accounts(ws: Workspace, spec: PipelineSpec) -> None:
    """Every stage's account exists and is a service account, before any stage runs."""
    from pipewarden.errors import IdentityError
    from pipewarden.identity import Accounts

    book = Accounts(ws.database(), events=ws.events())
    for name in sorted({s.account for s in spec.stages}):
        try:
            principal = book.get(name)
        except IdentityError:
            raise ConfigError(
                f"{spec.source}: account {name}: no such service account; declare it under accounts"
            ) from None
        if principal.kind != "service":
            raise ConfigError(
                f"{spec.source}: account {name} is not a service account; stages run as services"
            )


# --- running ---------------------------------------------------------------------------------------------


def _monitor(ws: Workspace) -> Any:
    from pipewarden.monitor import AlertBook, Monitor
    from pipewarden.monitor._config import MonitorConfig

    config = MonitorConfig.for_workspace(ws.root)
    book = AlertBook(
        ws.database(), sinks=config.sinks, routes=config.routes, timing=config.timing, acting=_operator(ws)
    )
    monitor = Monitor(config.rules, book=book)
    monitor.load_state(ws.database())
    return monitor


def _stage_event(ws: Workspace, spec: PipelineSpec, result: StageResult) -> None:
    outcome = {"passed": "allowed", "blocked": "denied", "denied": "denied", "skipped": "denied"}.get(
        result.outcome, "error"
    )
    _operator(ws).emit(
        "pipeline.run",
        f"pipeline:{spec.project}/{spec.name}",
        outcome,
        {
            "stage": result.name,
            "account": result.account,
            "stage_outcome": result.outcome,
            "expected": result.expected,
            "stored": len(result.stored),
            "reason": result.reason[:500],
        },
    )


def run_pipeline(
    spec: PipelineSpec,
    *,
    workspace: Workspace | Path | None = None,
    report_dir: Path | None = None,
    progress: Callable[[StageResult], None] | None = None,
) -> RunResult:
    """Run every stage of `spec` in order; see the module docstring. Raises `ConfigError` for a workspace
    or accounts that are not as the pipeline needs them; a stage's failure is in the result."""
    from pipewarden.workspace import Workspace

    started = datetime.now(UTC)
    if isinstance(workspace, Workspace):
        ws, created, password_file = workspace, False, None
    else:
        ws, created, password_file = prepare_workspace(
            workspace if workspace is not None else spec.workspace, create=spec.create_workspace
        )
    notes = _ensure_accounts(ws, spec.accounts)
    _check_stage_accounts(ws, spec)
    if created:
        notes.insert(
            0, f"created workspace {ws.root} (SQLite, local store, new keys, first admin {FIRST_ADMIN})"
        )
    run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    run_dir = report_dir or ws.root / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    monitor = _monitor(ws)
    # The monitor follows the audit log, as `pipewarden monitor run` does: every event of the run reaches
    # it, whoever emitted it (a stage, the login service, another process on the same workspace).
    log = ws.audit_log()
    tail = log.tail(1)
    cursor = tail[-1].seq if tail else 0

    def follow() -> None:
        nonlocal cursor
        for entry in log.records(cursor + 1):
            monitor.observe(entry.event)
            cursor = entry.seq

    results: dict[str, StageResult] = {}
    pinned: dict[str, str] = {}
    producers = spec.producers()
    try:
        for stage in spec.order():
            result = _run_stage(stage, spec, ws, run_id, run_dir, results, pinned, producers)
            results[stage.name] = result
            if stage.expect == "passed":  # what a drill stored is never what a real stage reads
                for ref in result.stored:
                    pinned[ArtifactRef.parse(ref).name] = ref
            _stage_event(ws, spec, result)
            follow()
            if progress is not None:
                progress(result)
    finally:
        follow()
        monitor.tick()
        monitor.save_state(ws.database())
    alerts = tuple(
        {
            "id": a.id,
            "rule_id": a.rule_id,
            "severity": a.severity.label,
            "title": a.title,
            "labels": dict(a.labels),
            "detections": a.detections,
            "first_seen": a.first_seen.isoformat(timespec="seconds"),
            "last_seen": a.last_seen.isoformat(timespec="seconds"),
        }
        for a in monitor.book.alerts()
        if _aware(a.last_seen) >= started
    )
    return RunResult(
        pipeline=spec.name,
        project=spec.project,
        run_id=run_id,
        workspace=ws.root,
        stages=tuple(results[s.name] for s in spec.stages if s.name in results),
        alerts=alerts,
        expected_alerts=spec.expect_alerts,
        started=started,
        finished=datetime.now(UTC),
        report_dir=run_dir,
        created_workspace=created,
        admin_password_file=password_file,
        notes=tuple(notes),
    )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _run_stage(
    stage: StageSpec,
    spec: PipelineSpec,
    ws: Workspace,
    run_id: str,
    run_dir: Path,
    results: Mapping[str, StageResult],
    pinned: Mapping[str, str],
    producers: Mapping[str, str],
) -> StageResult:
    waiting = [u for u in spec.upstream(stage) if results[u].outcome != "passed"]
    unwritten = [
        s.artifact
        for s in stage.inputs.values()
        if s.artifact is not None
        and ArtifactRef.parse(s.artifact).version is None
        and ArtifactRef.parse(s.artifact).name in producers
        and ArtifactRef.parse(s.artifact).name not in pinned
    ]
    if waiting or unwritten:
        why = (
            f"stage {waiting[0]} ended {results[waiting[0]].outcome}"
            if waiting
            else f"{unwritten[0]} was not stored by this run (set aside by a gate)"
        )
        now = datetime.now(UTC)
        return StageResult(
            name=stage.name,
            account=stage.account,
            outcome="skipped",
            reason=f"not run: {why}",
            expected=stage.expect,
            started=now,
            finished=now,
        )
    run = StageRun(
        stage, workspace=ws, pipeline=spec.name, root=spec.root, run_id=run_id, run_dir=run_dir, pinned=pinned
    )
    try:
        context = run.open()
    except Exception:  # recorded in run.result by open()
        assert run.result is not None  # noqa: S101
        return run.result
    try:
        stage.run(context)
    except Exception as exc:
        logger.info("stage %s raised %s", stage.name, type(exc).__name__)
        return run.close(exc)
    return run.close(None)


# --- the same pipeline in Python ----------------------------------------------------------------------------


def gate(
    type: str,  # the word the pipeline file uses
    *,
    on: str,
    policy: str = "block",
    fail_on: str = "medium",
    name: str = "",
    catches: Sequence[int] | None = None,
    **settings: Any,
) -> GateSpec:
    """A gate for `Pipeline.stage` or `pipewarden.stage`: ``gate("scan", on="model", policy="block")``."""
    from pipewarden.pipeline._spec import GATE_TYPES, POLICIES, check_gate_settings

    if type not in GATE_TYPES:
        raise ConfigError(f"{type!r} is not a gate type (choose from {', '.join(GATE_TYPES)})")
    check_gate_settings(type, settings, f"gate {name or type}")
    if policy not in POLICIES:
        raise ConfigError(f"{policy!r} is not a policy (choose from {', '.join(POLICIES)})")
    return GateSpec(
        type=type,
        on=on,
        policy=policy,
        fail_on=Severity.parse(fail_on),
        name=name,
        settings=MappingProxyType(dict(settings)),
        catches=tuple(sorted(set(catches))) if catches is not None else None,
    )


class Pipeline:
    """A pipeline declared in Python; the same thing a pipeline file declares.

    >>> pipe = Pipeline("fraud", accounts={"svc-train": [Grant("pipeline-service", "fraud/*")]})
    >>> @pipe.stage(account="svc-train", inputs={"data": "fraud/data/train"},
    ...             outputs={"model": "fraud/models/clf"}, gates=[gate("scan", on="model")])
    ... def train(ctx): ...
    >>> result = pipe.run()  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        *,
        project: str | None = None,
        accounts: Mapping[str, Sequence[Grant]] | None = None,
        workspace: Path | None = None,
        create_workspace: bool = False,
        expect_alerts: Sequence[str] = (),
        root: Path | None = None,
    ) -> None:
        self.name = name
        self.project = project or name
        self.accounts = tuple(AccountSpec(k, tuple(v)) for k, v in (accounts or {}).items())
        self.workspace = workspace
        self.create_workspace = create_workspace
        self.expect_alerts = tuple(expect_alerts)
        self.root = root or Path.cwd()
        self.stages: list[StageSpec] = []

    def stage(
        self,
        *,
        account: str,
        name: str | None = None,
        inputs: Mapping[str, str | InputSpec] | None = None,
        outputs: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        needs: Sequence[str] = (),
        gates: Sequence[GateSpec] = (),
        expect: str = "passed",
    ) -> Callable[[F], F]:
        def register(func: F) -> F:
            self.stages.append(
                StageSpec(
                    name=name or func.__name__.replace("_", "-"),
                    run=func,
                    account=account,
                    inputs=MappingProxyType(
                        {
                            k: v if isinstance(v, InputSpec) else InputSpec(artifact=v)
                            for k, v in (inputs or {}).items()
                        }
                    ),
                    outputs=MappingProxyType(dict(outputs or {})),
                    params=MappingProxyType(dict(params or {})),
                    needs=tuple(needs),
                    gates=tuple(gates),
                    expect=expect,
                    description=(func.__doc__ or "").strip().split("\n")[0],
                )
            )
            return func

        return register

    @property
    def spec(self) -> PipelineSpec:
        return PipelineSpec(
            name=self.name,
            project=self.project,
            root=self.root,
            stages=tuple(self.stages),
            accounts=self.accounts,
            workspace=self.workspace,
            create_workspace=self.create_workspace,
            expect_alerts=self.expect_alerts,
            source=f"pipeline {self.name}",
        )

    def run(self, *, workspace: Workspace | Path | None = None, report_dir: Path | None = None) -> RunResult:
        return run_pipeline(self.spec, workspace=workspace, report_dir=report_dir)
