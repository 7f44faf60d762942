"""One stage, run as its own service account behind its gates.

`StageRun` does the work around a stage's code; the runner uses it for each stage of a pipeline, and
`pipewarden.stage(...)` gives the same to a task of any orchestrator::

    with pipewarden.stage("train", account="svc-train", inputs={"data": "fraud/data/train"},
                          outputs={"model": "fraud/models/clf"}, gates=[gate("scan", on="model")]) as ctx:
        fit(ctx.input("data")).save(ctx.output("model", suffix=".joblib"))

On the way in, each input artifact is read through the store as the stage's account (authorized,
audited, signature and digest verified) into a private folder, and the input gates run. On the way out,
each output must have been written, the output gates run, and only if none stopped the stage is anything
stored: scanned, encrypted and signed by the store, with the inputs as its parents and a signed
provenance statement beside it. A stage that fails leaves nothing behind in the store.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pipewarden.errors import (
    AccessDenied,
    ArtifactRefused,
    GateBlocked,
    IntegrityError,
    PipelineError,
)
from pipewarden.pipeline._gates import GATE_ACTIONS, GateEnv, GateResult, Subject, run_gate
from pipewarden.pipeline._provenance import (
    PROVENANCE_SUFFIX,
    build_statement,
    code_digests,
    git_commit,
    sign_statement,
)
from pipewarden.pipeline._spec import GateSpec, InputSpec, StageSpec

if TYPE_CHECKING:
    from pipewarden.events import Acting, Event
    from pipewarden.store import Artifact, GuardedStore
    from pipewarden.workspace import Workspace

__all__ = ["StageContext", "StageResult", "StageRun", "stage"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StageResult:
    """How a stage ended (one of `OUTCOMES`), why, what its gates said and what it stored."""

    name: str
    account: str
    outcome: str
    reason: str
    expected: str
    gates: tuple[GateResult, ...] = ()
    stored: tuple[str, ...] = ()
    provenance: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    started: datetime | None = None
    finished: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    log: tuple[str, ...] = ()

    @property
    def met(self) -> bool:
        """The stage ended as it was expected to, and every gate caught what it was expected to catch."""
        return self.outcome == self.expected and all(g.met for g in self.gates)

    @property
    def seconds(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return (self.finished - self.started).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "account": self.account,
            "outcome": self.outcome,
            "expected": self.expected,
            "met": self.met,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "gates": [g.to_dict() for g in self.gates],
            "stored": list(self.stored),
            "provenance": list(self.provenance),
            "read": list(self.read),
            "facts": dict(self.facts),
            "log": list(self.log),
        }


class StageContext:
    """What a stage's code sees: its inputs (verified local files), where to write its outputs, its
    parameters, and the store as its own service account."""

    def __init__(self, run: StageRun) -> None:
        self._run = run
        self.name = run.spec.name
        self.account = run.spec.account
        self.params: Mapping[str, Any] = run.spec.params
        self.run_id = run.run_id
        #: The workspace's folder (a path, not its keys: stage code gets no signing key or database).
        self.workspace_root = run.workspace.root
        #: The pipeline file's folder: relative paths in parameters are meant from here.
        self.root = run.root
        self.facts: dict[str, Any] = {}
        self.messages: list[str] = []

    @property
    def store(self) -> ReadOnlyStore:
        """The artifact store as this stage's service account, for reading: every read authorized and
        audited. Writes go through `output` only, so every stored artifact has passed the gates."""
        return ReadOnlyStore(self._run.store)

    @property
    def inputs(self) -> Mapping[str, Path]:
        return MappingProxyType(
            {k: s.path for k, s in self._run.subjects.items() if k in self._run.spec.inputs}
        )

    def input(self, name: str) -> Path:
        if name not in self._run.spec.inputs:
            raise PipelineError(f"stage {self.name}: no input named {name!r}")
        return self._run.subjects[name].path

    def output(self, name: str, *, suffix: str = "") -> Path:
        """Where to write output `name` (a file in the stage's private folder, stored after the gates)."""
        if name not in self._run.spec.outputs:
            raise PipelineError(f"stage {self.name}: no output named {name!r}")
        artifact = self._run.spec.outputs[name]
        base = artifact.rsplit("/", 1)[-1]
        path = self._run.scratch / "out" / (base if Path(base).suffix or not suffix else base + suffix)
        self._run.written[name] = path
        return path

    def record(self, **facts: Any) -> None:
        """Numbers and short facts for the run report (an accuracy, a count)."""
        self.facts.update(facts)

    def log(self, message: str) -> None:
        self.messages.append(message)
        logger.info("stage %s: %s", self.name, message)


class ReadOnlyStore:
    """A stage's view of the store: reads, listings and verification as its account; no writes."""

    def __init__(self, store: GuardedStore) -> None:
        self._store = store

    def get(self, ref: str, dest: str | Path) -> Artifact:
        return self._store.get(ref, dest)

    def read_bytes(self, ref: str) -> bytes:
        return self._store.read_bytes(ref)

    def artifacts(self, name: str | None = None) -> list[Artifact]:
        return self._store.artifacts(name)

    def lineage(self, ref: str) -> Any:
        return self._store.lineage(ref)


def _suffix(artifact: Artifact) -> str:
    from pipewarden.store._media import suffix_for

    return Path(artifact.name).suffix or suffix_for(artifact.media_type)


class StageRun:
    """The machinery around one stage; `open()` before its code runs, `close()` after."""

    def __init__(
        self,
        spec: StageSpec,
        *,
        workspace: Workspace,
        pipeline: str,
        root: Path,
        run_id: str | None = None,
        run_dir: Path | None = None,
        pinned: Mapping[str, str] | None = None,
        code: list[dict[str, Any]] | None = None,
    ) -> None:
        self.spec = spec
        self.code = code
        self.workspace = workspace
        self.pipeline = pipeline
        self.root = root
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.run_dir = run_dir or workspace.root / "runs" / self.run_id
        self.pinned = dict(pinned or {})
        self.subjects: dict[str, Subject] = {}
        self.written: dict[str, Path] = {}
        self.gates: list[GateResult] = []
        self.stored: list[Artifact] = []
        self.provenance: list[str] = []
        self.inputs_read: list[Artifact] = []
        self.context: StageContext | None = None
        self.result: StageResult | None = None
        self.started = datetime.now(UTC)
        #: What pipewarden itself refused during the stage (by event), so an outcome is never taken
        #: from an exception the stage's own code raised.
        self.refusals: list[str] = []
        self.stopped = False  # a gate of this stage stopped it
        self.preflight_refused = False
        self._scratch: Path | None = None
        self._acting: Acting | None = None
        self._store: GuardedStore | None = None

    # --- who acts ------------------------------------------------------------------------------------

    @property
    def scratch(self) -> Path:
        assert self._scratch is not None  # noqa: S101  # set by open()
        return self._scratch

    @property
    def acting(self) -> Acting:
        if self._acting is None:
            from pipewarden.events import Acting, Actor
            from pipewarden.identity import Access, Accounts, Policy

            policy = Policy.for_workspace(self.workspace.root)
            principal = Accounts(self.workspace.database(), events=self.workspace.events()).get(
                self.spec.account
            )
            if principal.kind != "service":
                raise PipelineError(f"stage {self.spec.name}: {self.spec.account} is not a service account")
            if principal.disabled:
                raise AccessDenied(f"{self.spec.account}: the service account is disabled")
            access = Access(self.workspace.database(), policy=policy, events=self.workspace.events())
            self._acting = Acting(
                actor=Actor(self.spec.account, "service", f"pipeline:{self.pipeline}/{self.spec.name}"),
                events=self.workspace.events(),
                authorizer=policy.bind(access.subject(self.spec.account, mfa=False)),
            )
        return self._acting

    @property
    def store(self) -> GuardedStore:
        if self._store is None:
            from pipewarden.store import GuardedStore

            self._store = GuardedStore(self.workspace.store(), self.acting)
        return self._store

    # --- in ------------------------------------------------------------------------------------------

    def _observe(self, event: Event) -> None:
        if event.actor != self.spec.account:
            return
        if event.outcome == "denied" and "rule" in event.attributes:
            self.refusals.append("denied")
        elif event.outcome == "error" and event.attributes.get("reason") == "integrity":
            self.refusals.append("tampered")
        elif event.outcome == "denied" and event.attributes.get("reason") == "scan":
            self.refusals.append("refused")

    def open(self) -> StageContext:
        """Read the inputs and run the input gates; raises what stops the stage (recorded in `result`)."""
        self.workspace.events().subscribe(self._observe)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._scratch = Path(tempfile.mkdtemp(prefix=f".{self.spec.name}.", dir=self.run_dir))
            (self.scratch / "in").mkdir()
            (self.scratch / "out").mkdir()
            for name, spec in self.spec.inputs.items():
                self.subjects[name] = self._fetch(name, spec)
            for gate in self.spec.gates:
                if gate.on in self.spec.inputs:
                    self._gate(gate, self.subjects[gate.on])
            withheld = [n for n in self.spec.inputs if self.subjects[n].withheld]
            if withheld:
                # A file set aside whole is not handed to the stage: without it, the stage cannot run.
                self.stopped = True
                raise GateBlocked(f"stage {self.spec.name}: input {withheld[0]} was set aside by its gate")
            self.context = StageContext(self)
            return self.context
        except BaseException as exc:
            self.close(exc)
            raise

    def _fetch(self, name: str, spec: InputSpec) -> Subject:
        if spec.file is not None:
            source = spec.file if spec.file.is_absolute() else self.root / spec.file
            if not source.is_file():
                raise PipelineError(f"stage {self.spec.name}: input {name}: {source} is not a file")
            # Under its own name: a file's name can say what it is (pyproject.toml, poetry.lock).
            (self.scratch / "in" / name).mkdir()
            target = self.scratch / "in" / name / source.name
            shutil.copyfile(source, target)
            return Subject(name, target, f"{self.pipeline}/{self.spec.name}/{name}")
        assert spec.artifact is not None  # noqa: S101  # InputSpec holds one or the other
        from pipewarden.store import ArtifactRef

        parsed = ArtifactRef.parse(spec.artifact)
        ref = spec.artifact if parsed.version is not None else self.pinned.get(parsed.name, spec.artifact)
        # The manifest first (authorized as a listing), to name the local file by its type.
        record = self.store.store.resolve(ref) if self._may_list(parsed.name) else None
        target = self.scratch / "in" / f"{name}{_suffix(record) if record is not None else ''}"
        art = self.store.get(ref, target)
        self.inputs_read.append(art)
        return Subject(name, target, art.name, artifact=art)

    def _may_list(self, name: str) -> bool:
        return bool(self.acting.authorizer.check("artifact.list", f"artifact:{name}").allowed)

    def _gate(self, gate: GateSpec, subject: Subject) -> GateResult:
        action = GATE_ACTIONS[gate.type]
        kind = action.partition(".")[0]
        resource = f"{kind}:{subject.resource}"
        model = self.subjects.get(str(gate.settings.get("model", "")))
        if gate.type == "guard" and model is not None:
            resource = f"model:{model.resource}"  # the guard answers for the model it guards
        self.acting.authorize(action, resource)
        env = GateEnv(
            stage=self.spec.name,
            store=self.store,
            workspace=self.workspace,
            root=self.root,
            subjects=self.subjects,
            quarantine_dir=self.run_dir / "quarantine",
            scratch=self.scratch,
            params=self.spec.params,
        )
        result = run_gate(gate, subject, env)
        self.gates.append(result)
        self.stopped = self.stopped or result.stops
        counts = result.report.counts()
        self.acting.emit(
            action,
            resource,
            "denied" if result.stops else "allowed",
            {
                "gate": gate.label,
                "stage": self.spec.name,
                "policy": gate.policy,
                "verdict": result.verdict,
                "blocked": result.stops,
                "quarantined": len(result.quarantined),
                "findings": sum(counts.values()),
            },
        )
        if result.stops:
            raise GateBlocked(
                f"stage {self.spec.name}: gate {gate.label} on {gate.on}: {result.message}",
                report=result.report,
            )
        return result

    # --- out -----------------------------------------------------------------------------------------

    def _finish(self, context: StageContext) -> None:
        for name in self.spec.outputs:
            path = self.written.get(name)
            if path is None or not path.is_file():
                raise PipelineError(f"stage {self.spec.name}: output {name} was not written")
            self.subjects[name] = Subject(name, path, self.spec.outputs[name])
        for gate in self.spec.gates:
            if gate.on in self.spec.outputs:
                self._gate(gate, self.subjects[gate.on])
        keep = [n for n in self.spec.outputs if not self.subjects[n].withheld]
        if len(keep) > 1:
            self._preflight(keep)
        commit = git_commit(self.root)
        code = self.code if self.code is not None else code_digests(self.spec.run)
        files = {
            k: s.file if s.file.is_absolute() else self.root / s.file
            for k, s in self.spec.inputs.items()
            if s.file is not None
        }
        parents = [a.ref for a in self.inputs_read]
        for name in keep:
            art = self.store.put(self.subjects[name].path, name=self.spec.outputs[name], parents=parents)
            self.stored.append(art)
            statement = build_statement(
                artifact=art,
                pipeline=self.pipeline,
                stage=self.spec.name,
                account=self.spec.account,
                run_id=self.run_id,
                params=self.spec.params,
                inputs=self.inputs_read,
                files=files,
                code=code,
                commit=commit,
                started=self.started,
                finished=datetime.now(UTC),
            )
            envelope = self.scratch / f"{name}.provenance.json"
            envelope.write_bytes(sign_statement(statement, self.workspace.signing_key()))
            prov = self.store.put(envelope, name=art.name + PROVENANCE_SUFFIX, parents=[art.ref])
            self.provenance.append(prov.ref)

    def _preflight(self, names: list[str]) -> None:
        """Scan every output as the store will before storing any, so a stage with several outputs is
        stored whole or not at all."""
        from pipewarden.scan import scan_path

        threshold = self.workspace.config.scan_fail_on
        from pipewarden.findings import Severity

        for name in names:
            report = scan_path(
                self.subjects[name].path, policy=self.workspace._scan_policy(), assume_model=False
            )
            if report.at_or_above(Severity.parse(threshold)):
                self.preflight_refused = True
                raise ArtifactRefused(
                    f"{self.subjects[name].path.name}: the store would refuse output {name} "
                    f"(scan findings at or above {threshold}); nothing of this stage was stored",
                    report=report,
                )

    def _classify(self, exc: BaseException | None) -> tuple[str, str]:
        """The outcome, from what pipewarden itself did: a gate that stopped the stage, a refusal the
        authorizer or the store recorded. The same exception raised by the stage's own code is a
        failure, never a blocked, denied or tampered outcome a drill could be credited with."""
        if exc is None:
            return "passed", ""
        text = str(exc)
        if isinstance(exc, GateBlocked) and self.stopped:
            return "blocked", text
        if isinstance(exc, ArtifactRefused) and (self.preflight_refused or "refused" in self.refusals):
            return "blocked", f"the store refused it: {text}"
        if isinstance(exc, AccessDenied) and "denied" in self.refusals:
            return "denied", text
        if isinstance(exc, IntegrityError) and "tampered" in self.refusals:
            return "tampered", text
        return "failed", f"{type(exc).__name__}: {text}"

    def close(self, exc: BaseException | None) -> StageResult:
        """Finish the stage (when its code returned) and record how it ended."""
        if self.result is not None:
            return self.result
        try:
            if exc is None:
                assert self.context is not None  # noqa: S101  # open() succeeded
                self._finish(self.context)
        except Exception as raised:
            exc = raised
        finally:
            self.workspace.events().unsubscribe(self._observe)
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
        outcome, reason = self._classify(exc)
        context = self.context
        self.result = StageResult(
            name=self.spec.name,
            account=self.spec.account,
            outcome=outcome,
            reason=reason,
            expected=self.spec.expect,
            gates=tuple(self.gates),
            stored=tuple(a.ref for a in self.stored),
            provenance=tuple(self.provenance),
            read=tuple(a.ref for a in self.inputs_read),
            started=self.started,
            finished=datetime.now(UTC),
            facts=MappingProxyType(dict(context.facts) if context else {}),
            log=tuple(context.messages) if context else (),
        )
        return self.result


def _caller_code() -> list[dict[str, Any]]:
    """The code of whoever entered `stage(...)`: the first frame outside this module and contextlib."""
    import hashlib
    import sys

    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename in (__file__, contextlib.__file__):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return []
    path = Path(frame.f_code.co_filename)
    if not path.is_file():
        return []
    return [
        {
            "name": f"code:{path.name}",
            "uri": path.resolve().as_uri(),
            "digest": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
        },
        {"name": f"function:{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}"},
    ]


@contextlib.contextmanager
def stage(
    name: str,
    *,
    account: str,
    workspace: Workspace | str | Path | None = None,
    inputs: Mapping[str, str | InputSpec] | None = None,
    outputs: Mapping[str, str] | None = None,
    gates: tuple[GateSpec, ...] | list[GateSpec] = (),
    params: Mapping[str, Any] | None = None,
    pipeline: str = "adhoc",
    root: Path | None = None,
) -> Iterator[StageContext]:
    """Run the body as a pipeline stage: inputs read and gated, outputs gated, stored and attested.

    Raises what stopped the stage (`GateBlocked`, `AccessDenied`, `IntegrityError`, `ArtifactRefused`, or
    the body's own error), so the orchestrator's task fails; nothing is stored unless every gate passed.
    """
    from pipewarden.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    spec = StageSpec(
        name=name,
        run=stage,
        account=account,
        inputs=MappingProxyType(
            {k: v if isinstance(v, InputSpec) else InputSpec(artifact=v) for k, v in (inputs or {}).items()}
        ),
        outputs=MappingProxyType(dict(outputs or {})),
        params=MappingProxyType(dict(params or {})),
        gates=tuple(gates),
    )
    run = StageRun(spec, workspace=ws, pipeline=pipeline, root=root or Path.cwd(), code=_caller_code())
    context = run.open()
    try:
        yield context
    except BaseException as exc:
        run.close(exc)
        raise
    result = run.close(None)
    if result.outcome != "passed":
        raise PipelineError(f"stage {name}: {result.outcome}: {result.reason}")
