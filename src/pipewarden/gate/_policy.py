"""The gate's policy file: which checks `pipewarden ci` runs over a tree, and what fails it.

A policy is YAML; every key is optional except `version`. Paths in it are relative to the tree being
checked. Unknown keys are errors (a misspelt `fail_on` must not quietly fall back to the default), and
every error names the file and the key.

    version: 1
    fail_on: high                  # the default threshold of every check
    exclude: ["build/**"]          # never looked at by the model scan or the secrets scan
    scan:     {exclude: ["tests/fixtures/**"], fail_on: medium}
    deps:     {paths: ["requirements.lock"], db: osv/pypi.zip}
    secrets:  {baseline: .secrets.baseline.json}
    data:
      - {name: train, data: data/train.csv, contract: contracts/train.yaml}
    posture:  {workspace: .pipewarden}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipewarden.errors import ConfigError
from pipewarden.findings import Severity

__all__ = [
    "DataStep",
    "DepsStep",
    "GatePolicy",
    "PostureStep",
    "ScanStep",
    "SecretsStep",
]

_FORMAT_VERSION = 1
_DEFAULT_FAIL_ON = Severity.HIGH
_OSV_API = "https://api.osv.dev"


@dataclass(frozen=True, slots=True)
class ScanStep:
    """The model scan over the tree: every file whose content is a model format."""

    enabled: bool = True
    paths: tuple[str, ...] = (".",)
    exclude: tuple[str, ...] = ()
    allow: str | None = None
    fail_on: Severity = _DEFAULT_FAIL_ON


@dataclass(frozen=True, slots=True)
class DepsStep:
    """The dependency audit: `db` (an offline OSV database) or else `osv_url` (the OSV API)."""

    enabled: bool = True
    paths: tuple[str, ...] = (".",)
    db: str | None = None
    osv_url: str = _OSV_API
    ignores: str | None = None
    fail_on: Severity = _DEFAULT_FAIL_ON


@dataclass(frozen=True, slots=True)
class SecretsStep:
    """The secrets scan over the tree, with an optional baseline of accepted findings."""

    enabled: bool = True
    baseline: str | None = None
    exclude: tuple[str, ...] = ()
    fail_on: Severity = _DEFAULT_FAIL_ON


@dataclass(frozen=True, slots=True)
class DataStep:
    """One data file checked against its contract."""

    name: str
    data: str
    contract: str
    fail_on: Severity = _DEFAULT_FAIL_ON


@dataclass(frozen=True, slots=True)
class PostureStep:
    """The deployment's posture, when a workspace is given (here or on the command line)."""

    enabled: bool = True
    workspace: str | None = None
    osv_db: str | None = None
    url: str | None = None
    tls_cert: str | None = None
    ca: str | None = None
    probe_sinks: bool = True
    fail_on: Severity = _DEFAULT_FAIL_ON


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """A validated policy. `GatePolicy()` is the default: scan, deps and secrets over the whole tree,
    failing on high and above; no data checks; posture only when a workspace is given."""

    source: str = "<default policy>"
    fail_on: Severity = _DEFAULT_FAIL_ON
    exclude: tuple[str, ...] = ()
    scan: ScanStep = field(default_factory=ScanStep)
    deps: DepsStep = field(default_factory=DepsStep)
    secrets: SecretsStep = field(default_factory=SecretsStep)
    data: tuple[DataStep, ...] = ()
    posture: PostureStep = field(default_factory=PostureStep)

    @classmethod
    def load(cls, path: Path) -> GatePolicy:
        """Read and validate a policy file; `ConfigError` naming the file and key on any problem."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such policy file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read: {exc}") from exc
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, *, source: str) -> GatePolicy:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{source}:{where} not valid YAML") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: a policy is a mapping with at least `version: {_FORMAT_VERSION}`")
        return _Reader(source).policy(doc)


class _Reader:
    """Turns the YAML mapping into a policy, naming the key of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {problem}")

    def keys(self, doc: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(str(k) for k in doc if k not in allowed)
        if unknown:
            raise self.fail(f"{where}{unknown[0]}", f"unknown key (known: {', '.join(sorted(allowed))})")

    def section(self, doc: dict[str, Any], key: str) -> dict[str, Any] | None:
        """A check's section: absent, empty or `true` (its defaults), `false` (off) or a mapping. Only an
        explicit `false` turns a check off: ``scan:`` followed by nothing but a comment keeps it on."""
        value = doc.get(key, True)
        if value is True or value is None:
            return {}
        if value is False:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping, true or false")
        return value

    def severity(self, doc: dict[str, Any], key: str, where: str, default: Severity) -> Severity:
        if key not in doc:
            return default
        try:
            level = Severity.parse(str(doc[key]))
        except (ValueError, ConfigError) as exc:
            raise self.fail(f"{where}{key}", str(exc)) from None
        if level is Severity.INFO:
            raise self.fail(f"{where}{key}", "info would fail on every summary; use low or above")
        return level

    def text(self, doc: dict[str, Any], key: str, where: str) -> str | None:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}{key}", "must be a non-empty string")
        return value

    def texts(self, doc: dict[str, Any], key: str, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = doc.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"{where}{key}", "must be a list of non-empty strings")
        return tuple(value)

    def flag(self, doc: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = doc.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}{key}", "must be true or false")
        return value

    def policy(self, doc: dict[str, Any]) -> GatePolicy:
        self.keys(doc, {"version", "fail_on", "exclude", "scan", "deps", "secrets", "data", "posture"}, "")
        if doc.get("version") != _FORMAT_VERSION:
            raise self.fail("version", f"must be {_FORMAT_VERSION} (got {doc.get('version')!r})")
        fail_on = self.severity(doc, "fail_on", "", _DEFAULT_FAIL_ON)
        return GatePolicy(
            source=self.source,
            fail_on=fail_on,
            exclude=self.texts(doc, "exclude", "", ()),
            scan=self.scan(self.section(doc, "scan"), fail_on),
            deps=self.deps(self.section(doc, "deps"), fail_on),
            secrets=self.secrets(self.section(doc, "secrets"), fail_on),
            data=self.data(doc.get("data"), fail_on),
            posture=self.posture(self.section(doc, "posture"), fail_on),
        )

    def scan(self, doc: dict[str, Any] | None, fail_on: Severity) -> ScanStep:
        if doc is None:
            return ScanStep(enabled=False)
        self.keys(doc, {"paths", "exclude", "allow", "fail_on"}, "scan.")
        return ScanStep(
            paths=self.texts(doc, "paths", "scan.", (".",)),
            exclude=self.texts(doc, "exclude", "scan.", ()),
            allow=self.text(doc, "allow", "scan."),
            fail_on=self.severity(doc, "fail_on", "scan.", fail_on),
        )

    def deps(self, doc: dict[str, Any] | None, fail_on: Severity) -> DepsStep:
        if doc is None:
            return DepsStep(enabled=False)
        self.keys(doc, {"paths", "db", "osv_url", "ignores", "fail_on"}, "deps.")
        if "db" in doc and "osv_url" in doc:
            raise self.fail("deps", "give db (an offline database) or osv_url (the API), not both")
        return DepsStep(
            paths=self.texts(doc, "paths", "deps.", (".",)),
            db=self.text(doc, "db", "deps."),
            osv_url=self.text(doc, "osv_url", "deps.") or _OSV_API,
            ignores=self.text(doc, "ignores", "deps."),
            fail_on=self.severity(doc, "fail_on", "deps.", fail_on),
        )

    def secrets(self, doc: dict[str, Any] | None, fail_on: Severity) -> SecretsStep:
        if doc is None:
            return SecretsStep(enabled=False)
        self.keys(doc, {"baseline", "exclude", "fail_on"}, "secrets.")
        return SecretsStep(
            baseline=self.text(doc, "baseline", "secrets."),
            exclude=self.texts(doc, "exclude", "secrets.", ()),
            fail_on=self.severity(doc, "fail_on", "secrets.", fail_on),
        )

    def data(self, value: Any, fail_on: Severity) -> tuple[DataStep, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail("data", "must be a list of {name, data, contract} entries")
        steps: list[DataStep] = []
        for i, entry in enumerate(value):
            where = f"data[{i}]."
            if not isinstance(entry, dict):
                raise self.fail(f"data[{i}]", "must be a mapping with data and contract")
            self.keys(entry, {"name", "data", "contract", "fail_on"}, where)
            data, contract = self.text(entry, "data", where), self.text(entry, "contract", where)
            if data is None or contract is None:
                raise self.fail(f"data[{i}]", "needs both data (the file) and contract (its contract)")
            name = self.text(entry, "name", where) or data
            if any(s.name == name for s in steps):
                raise self.fail(f"data[{i}].name", f"{name!r} is named twice")
            steps.append(DataStep(name, data, contract, self.severity(entry, "fail_on", where, fail_on)))
        return tuple(steps)

    def posture(self, doc: dict[str, Any] | None, fail_on: Severity) -> PostureStep:
        if doc is None:
            return PostureStep(enabled=False)
        self.keys(doc, {"workspace", "osv_db", "url", "tls_cert", "ca", "probe_sinks", "fail_on"}, "posture.")
        return PostureStep(
            workspace=self.text(doc, "workspace", "posture."),
            osv_db=self.text(doc, "osv_db", "posture."),
            url=self.text(doc, "url", "posture."),
            tls_cert=self.text(doc, "tls_cert", "posture."),
            ca=self.text(doc, "ca", "posture."),
            probe_sinks=self.flag(doc, "probe_sinks", "posture.", True),
            fail_on=self.severity(doc, "fail_on", "posture.", fail_on),
        )
