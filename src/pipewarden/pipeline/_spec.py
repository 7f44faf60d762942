"""A pipeline as declared: stages, their inputs, outputs and service accounts, gates and expectations.

The same `PipelineSpec` comes from a YAML file (`load_pipeline`) or from Python (`Pipeline` and its
``@stage`` decorator). Everything is checked when it is built: an unknown gate type, a gate on an input
the stage does not have, two stages writing one artifact, a cycle, an account no stage declares. A
pipeline that exists is one the runner can run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pipewarden.errors import ConfigError
from pipewarden.findings import Severity
from pipewarden.identity import ADMIN_ROLE, Grant
from pipewarden.store import ArtifactRef
from pipewarden.store._records import check_name

__all__ = [
    "GATE_SETTINGS",
    "GATE_TYPES",
    "OUTCOMES",
    "POLICIES",
    "AccountSpec",
    "GateSpec",
    "InputSpec",
    "PipelineSpec",
    "StageSpec",
    "check_gate_settings",
    "load_pipeline",
    "resolve_callable",
]

FORMAT = 1
#: What a gate checks. ``contract``, ``screen`` and ``guard`` read a table; ``scan`` a model file;
#: ``deps`` a requirements or lock file; ``signature`` that an input artifact was signed by a trusted key;
#: ``custom`` calls a Python function.
GATE_TYPES = ("contract", "screen", "scan", "deps", "signature", "guard", "custom")
#: What a gate does when it finds something at or above its threshold: stop the stage (and every stage
#: after it), set the offending rows aside and go on with the rest, or record it and go on.
POLICIES = ("block", "quarantine", "warn")
#: How a stage ended. ``blocked``: a gate or the store's scan stopped it; ``denied``: its service account
#: may not do what it tried; ``tampered``: an artifact failed verification; ``failed``: the stage's own
#: code raised, or an output was not written; ``skipped``: a stage it needs did not pass.
OUTCOMES = ("passed", "blocked", "denied", "tampered", "failed", "skipped")
_STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # input, output and gate names: never a path
_ROW_FILE = re.compile(r"^(?P<file>[^#]+)#(?P<key>[A-Za-z0-9_.-]+)$")


def _fail(where: str, what: str) -> ConfigError:
    return ConfigError(f"{where}: {what}")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """A stage input: a stored artifact (``NAME`` or ``NAME@VERSION``), or a file beside the pipeline."""

    artifact: str | None = None
    file: Path | None = None

    @property
    def describe(self) -> str:
        return f"artifact {self.artifact}" if self.artifact is not None else f"file {self.file}"


@dataclass(frozen=True, slots=True)
class GateSpec:
    """One gate: its type, the input or output it checks (`on`), its policy and its settings."""

    type: str
    on: str
    policy: str = "block"
    fail_on: Severity = Severity.MEDIUM
    name: str = ""
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Rows (0-based, of the checked table as the stage received it) this gate must catch: planted
    #: attacks. A planted row the gate lets through is an expectation not met.
    catches: tuple[int, ...] | None = None

    @property
    def label(self) -> str:
        return self.name or self.type


@dataclass(frozen=True, slots=True)
class StageSpec:
    name: str
    run: Callable[..., Any]
    account: str
    inputs: Mapping[str, InputSpec] = field(default_factory=lambda: MappingProxyType({}))
    outputs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    needs: tuple[str, ...] = ()
    gates: tuple[GateSpec, ...] = ()
    #: The outcome this stage must have: ``passed`` for work, another outcome for a drill (a planted
    #: attack the pipeline must stop).
    expect: str = "passed"
    description: str = ""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """A service account the pipeline's stages run as, and the grants it is created with."""

    name: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    name: str
    project: str
    root: Path
    stages: tuple[StageSpec, ...]
    accounts: tuple[AccountSpec, ...] = ()
    workspace: Path | None = None
    create_workspace: bool = False
    expect_alerts: tuple[str, ...] = ()
    source: str = "<python>"

    def __post_init__(self) -> None:
        where = self.source
        if not self.stages:
            raise _fail(where, "a pipeline needs at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise _fail(where, f"stage names must be unique: {', '.join(sorted(_dupes(names)))}")
        writers: dict[str, str] = {}
        # A drill (a stage expected not to pass) may aim at another stage's output: that is its attack.
        for stage in (s for s in self.stages if s.expect == "passed"):
            for artifact in stage.outputs.values():
                if artifact in writers:
                    raise _fail(
                        where,
                        f"artifact {artifact} is written by stages {writers[artifact]} and {stage.name}",
                    )
                writers[artifact] = stage.name
        known = {a.name for a in self.accounts}
        for stage in self.stages:
            if self.accounts and stage.account not in known:
                raise _fail(where, f"stage {stage.name}: account {stage.account} is not under accounts")
            for need in stage.needs:
                if need not in names:
                    raise _fail(
                        where, f"stage {stage.name}: needs {need}, which is no stage of this pipeline"
                    )
        for stage in self.stages:
            for key, spec in stage.inputs.items():
                if spec.artifact is None:
                    continue
                parsed = ArtifactRef.parse(spec.artifact)
                if parsed.version is not None and writers.get(parsed.name, stage.name) != stage.name:
                    raise _fail(
                        where,
                        f"stage {stage.name}: input {key} pins {spec.artifact}, which stage "
                        f"{writers[parsed.name]} writes; name it without a version to read this run's",
                    )
        self.order()  # a cycle is an error now, not at run time

    def producers(self) -> dict[str, str]:
        """Which stage writes each artifact name (drills aside)."""
        return {
            artifact: s.name for s in self.stages if s.expect == "passed" for artifact in s.outputs.values()
        }

    def upstream(self, stage: StageSpec) -> tuple[str, ...]:
        """The stages `stage` waits for: those it names under needs, and those writing what it reads."""
        producers = self.producers()
        found = list(stage.needs)
        for spec in stage.inputs.values():
            if spec.artifact is not None:
                producer = producers.get(ArtifactRef.parse(spec.artifact).name)
                if producer is not None and producer != stage.name and producer not in found:
                    found.append(producer)
        return tuple(found)

    def order(self) -> tuple[StageSpec, ...]:
        """The stages in an order that runs each after everything it waits for (declaration order
        otherwise); `ConfigError` naming the stages of a cycle."""
        by_name = {s.name: s for s in self.stages}
        done: list[StageSpec] = []
        placed: set[str] = set()
        remaining = list(self.stages)
        while remaining:
            ready = [s for s in remaining if all(u in placed for u in self.upstream(s))]
            if not ready:
                cycle = ", ".join(s.name for s in remaining)
                raise _fail(self.source, f"the stages {cycle} wait for each other (a cycle)")
            # Drills go last: whatever a drill manages to do, no real stage of the run sees it.
            first = next((s for s in ready if s.expect == "passed"), ready[0])
            done.append(by_name[first.name])
            placed.add(first.name)
            remaining.remove(first)
        return tuple(done)


def _dupes(names: Sequence[str]) -> set[str]:
    return {n for n in names if names.count(n) > 1}


# --- callables ---------------------------------------------------------------------------------------------


def resolve_callable(text: str, *, root: Path, where: str) -> Callable[..., Any]:
    """``file.py:function`` (a file beside the pipeline) or ``package.module:function`` (importable)."""
    module_part, sep, attr = text.partition(":")
    if not sep or not module_part or not attr.isidentifier():
        raise _fail(where, f"{text!r} is not 'file.py:function' or 'package.module:function'")
    if module_part.endswith(".py"):
        path = (root / module_part).resolve()
        if not path.is_file():
            raise _fail(where, f"{module_part}: no such file beside the pipeline ({path})")
        key = "pipewarden_stage_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
        module = sys.modules.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(key, path)
            if spec is None or spec.loader is None:
                raise _fail(where, f"{module_part}: cannot be loaded as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[key]
                raise _fail(
                    where, f"{module_part}: importing it failed: {type(exc).__name__}: {exc}"
                ) from exc
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise _fail(where, f"{module_part}: cannot be imported ({exc})") from exc
    found = getattr(module, attr, None)
    if not callable(found):
        raise _fail(where, f"{text}: {module_part} has no function {attr}")
    return found  # type: ignore[no-any-return]


# --- YAML -------------------------------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(where, "expected a mapping")
    return value


def _only(doc: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", f"unknown key (expected one of {', '.join(sorted(allowed))})")


def _text(doc: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or not value:
        raise _fail(f"{where}.{key}", "expected a non-empty string")
    return value


def _rows(value: Any, *, root: Path, where: str) -> tuple[int, ...]:
    if isinstance(value, str):
        m = _ROW_FILE.match(value)
        if m is None:
            raise _fail(where, f"{value!r}: rows are a list of numbers or 'file.json#key'")
        path = root / m["file"]
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(where, f"{path}: cannot be read as JSON ({exc})") from None
        if not isinstance(doc, dict) or m["key"] not in doc:
            raise _fail(where, f"{path}: has no key {m['key']!r}")
        value = doc[m["key"]]
    if not isinstance(value, list) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise _fail(where, "expected a list of row numbers (0-based)")
    return tuple(sorted(set(value)))


_GATE_KEYS = {"type", "on", "policy", "fail_on", "name", "expect"}
#: The settings each gate type takes: anything else is a typo that would weaken the gate silently.
GATE_SETTINGS: dict[str, frozenset[str]] = {
    "contract": frozenset({"contract"}),
    "screen": frozenset({"label", "fpr", "checks", "reference", "seed"}),
    "scan": frozenset(),
    "deps": frozenset({"db"}),
    "signature": frozenset({"signers"}),
    "guard": frozenset({"model", "actions"}),
    "custom": frozenset({"check", "params"}),
}
#: Settings a gate cannot run without.
GATE_REQUIRED: dict[str, frozenset[str]] = {
    "contract": frozenset({"contract"}),
    "signature": frozenset({"signers"}),
    "guard": frozenset({"model"}),
    "custom": frozenset({"check"}),
}


def check_gate_settings(kind: str, settings: Mapping[str, Any], where: str) -> None:
    """`ConfigError` for a setting the gate type does not take, or one it needs that is missing."""
    unknown = sorted(set(settings) - GATE_SETTINGS[kind])
    if unknown:
        allowed = ", ".join(sorted(GATE_SETTINGS[kind] | _GATE_KEYS))
        raise _fail(f"{where}.{unknown[0]}", f"a {kind} gate has no such setting (it takes {allowed})")
    missing = sorted(GATE_REQUIRED.get(kind, frozenset()) - set(settings))
    if missing:
        raise _fail(f"{where}.{missing[0]}", f"a {kind} gate needs this setting")


def _gate(doc: Any, *, stage: str, names: set[str], root: Path, where: str) -> GateSpec:
    if isinstance(doc, dict) and True in doc and "on" not in doc:
        # YAML 1.1 (PyYAML) reads a bare `on:` key as the boolean true; here it can only mean `on`.
        doc = {("on" if k is True else k): v for k, v in doc.items()}
    doc = _mapping(doc, where)
    kind = _text(doc, "type", where)
    if kind not in GATE_TYPES:
        raise _fail(f"{where}.type", f"{kind!r} is not a gate type (choose from {', '.join(GATE_TYPES)})")
    on = _text(doc, "on", where)
    if on not in names:
        raise _fail(f"{where}.on", f"stage {stage} has no input or output named {on!r}")
    policy = _text(doc, "policy", where, default="block")
    if policy not in POLICIES:
        raise _fail(f"{where}.policy", f"{policy!r} is not a policy (choose from {', '.join(POLICIES)})")
    try:
        fail_on = Severity.parse(str(doc.get("fail_on", "medium")))
    except ConfigError as exc:
        raise _fail(f"{where}.fail_on", str(exc)) from None
    expect = _mapping(doc.get("expect"), f"{where}.expect")
    _only(expect, {"catches"}, f"{where}.expect")
    catches = _rows(expect["catches"], root=root, where=f"{where}.expect.catches") if expect else None
    settings = {k: v for k, v in doc.items() if k not in _GATE_KEYS}
    check_gate_settings(kind, settings, where)
    name = str(doc.get("name", ""))
    if name and not _KEY.match(name):
        raise _fail(f"{where}.name", "a gate's name is letters, digits, '.', '_' and '-'")
    return GateSpec(
        type=kind,
        on=on,
        policy=policy,
        fail_on=fail_on,
        settings=MappingProxyType(settings),
        catches=catches,
        name=name,
    )


def _input(value: Any, where: str) -> InputSpec:
    if isinstance(value, str):
        value = {"artifact": value}
    doc = _mapping(value, where)
    _only(doc, {"artifact", "file"}, where)
    if ("artifact" in doc) == ("file" in doc):
        raise _fail(where, "an input is either {artifact: NAME[@VERSION]} or {file: PATH}")
    if "artifact" in doc:
        ref = _text(doc, "artifact", where)
        try:
            ArtifactRef.parse(ref)
        except ConfigError as exc:
            raise _fail(f"{where}.artifact", str(exc)) from None
        return InputSpec(artifact=ref)
    return InputSpec(file=Path(_text(doc, "file", where)))


_STAGE_KEYS = {
    "name",
    "run",
    "account",
    "inputs",
    "outputs",
    "params",
    "needs",
    "gates",
    "expect",
    "description",
}


def _stage(doc: Any, *, root: Path, where: str) -> StageSpec:
    doc = _mapping(doc, where)
    _only(doc, _STAGE_KEYS, where)
    name = _text(doc, "name", where)
    if not _STAGE_NAME.match(name):
        raise _fail(f"{where}.name", f"{name!r}: lower-case letters, digits, '.', '_' and '-', up to 64")
    where = f"{where.rsplit(': stages[', 1)[0]}: stage {name}"
    inputs = {k: _input(v, f"{where}.inputs.{k}") for k, v in _mapping(doc.get("inputs"), where).items()}
    for key in [*inputs, *_mapping(doc.get("outputs"), where)]:
        if not _KEY.match(key):
            raise _fail(f"{where}.{key}", "input and output names are letters, digits, '.', '_' and '-'")
    outputs: dict[str, str] = {}
    for key, value in _mapping(doc.get("outputs"), f"{where}.outputs").items():
        artifact = value.get("artifact") if isinstance(value, dict) else value
        if not isinstance(artifact, str):
            raise _fail(f"{where}.outputs.{key}", "an output is an artifact name (or {artifact: NAME})")
        try:
            outputs[key] = check_name(artifact)
        except ConfigError as exc:
            raise _fail(f"{where}.outputs.{key}", str(exc)) from None
    overlap = sorted(set(inputs) & set(outputs))
    if overlap:
        raise _fail(where, f"{overlap[0]!r} is both an input and an output")
    names = set(inputs) | set(outputs)
    gates = tuple(
        _gate(g, stage=name, names=names, root=root, where=f"{where}.gates[{i}]")
        for i, g in enumerate(doc.get("gates") or [])
    )
    needs = doc.get("needs") or []
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise _fail(f"{where}.needs", "expected a list of stage names")
    expect = str(doc.get("expect", "passed"))
    if expect not in OUTCOMES or expect == "skipped":
        raise _fail(f"{where}.expect", f"{expect!r} is not an outcome a stage can be expected to have")
    return StageSpec(
        name=name,
        run=resolve_callable(_text(doc, "run", where), root=root, where=f"{where}.run"),
        account=_text(doc, "account", where),
        inputs=MappingProxyType(inputs),
        outputs=MappingProxyType(outputs),
        params=MappingProxyType(_mapping(doc.get("params"), f"{where}.params")),
        needs=tuple(needs),
        gates=gates,
        expect=expect,
        description=str(doc.get("description", "")),
    )


def _accounts(doc: Any, where: str) -> tuple[AccountSpec, ...]:
    from pipewarden.identity._patterns import check_name as check_principal

    found = []
    for name, value in _mapping(doc, where).items():
        try:
            check_principal(name, what="service account")
        except ConfigError as exc:
            raise _fail(f"{where}.{name}", str(exc)) from None
        body = _mapping(value, f"{where}.{name}")
        _only(body, {"grants"}, f"{where}.{name}")
        grants = []
        for i, g in enumerate(body.get("grants") or []):
            gd = _mapping(g, f"{where}.{name}.grants[{i}]")
            _only(gd, {"role", "scope"}, f"{where}.{name}.grants[{i}]")
            role = _text(gd, "role", f"{where}.{name}.grants[{i}]")
            if role == ADMIN_ROLE:
                raise _fail(
                    f"{where}.{name}.grants[{i}].role",
                    "a pipeline file does not make administrators; give the account the narrowest role",
                )
            grants.append(Grant(role, str(gd.get("scope", "*"))))
        if not grants:
            raise _fail(f"{where}.{name}", "a service account needs at least one grant (deny by default)")
        found.append(AccountSpec(name, tuple(grants)))
    return tuple(found)


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and check a pipeline file; `ConfigError` naming the file and the field that is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    where = str(path)
    doc = _mapping(doc, where)
    _only(doc, {"version", "pipeline", "project", "workspace", "accounts", "stages", "expect"}, where)
    if doc.get("version") != FORMAT:
        raise _fail(f"{where}: version", f"expected {FORMAT}, found {doc.get('version')!r}")
    root = path.resolve().parent
    workspace = _mapping(doc.get("workspace"), f"{where}: workspace")
    _only(workspace, {"path", "create"}, f"{where}: workspace")
    stages_doc = doc.get("stages")
    if not isinstance(stages_doc, list):
        raise _fail(f"{where}: stages", "expected a list of stages")
    expect = _mapping(doc.get("expect"), f"{where}: expect")
    _only(expect, {"alerts"}, f"{where}: expect")
    alerts = expect.get("alerts") or []
    if not isinstance(alerts, list) or not all(isinstance(a, str) for a in alerts):
        raise _fail(f"{where}: expect.alerts", "expected a list of monitor rule ids")
    name = _text(doc, "pipeline", where)
    return PipelineSpec(
        name=name,
        project=str(doc.get("project", name)),
        root=root,
        stages=tuple(_stage(s, root=root, where=f"{where}: stages[{i}]") for i, s in enumerate(stages_doc)),
        accounts=_accounts(doc.get("accounts"), f"{where}: accounts"),
        workspace=(root / str(workspace["path"])).resolve() if "path" in workspace else None,
        create_workspace=bool(workspace.get("create", False)),
        expect_alerts=tuple(alerts),
        source=where,
    )
