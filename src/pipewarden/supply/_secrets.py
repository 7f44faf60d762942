"""Secrets in a project's files: code, notebooks (sources and outputs), YAML, env and config files.

Files are walked (never run), each read as lines and as detect-secrets' transformers rewrite them;
notebooks cell by cell and output by output (see `_notebooks`); the detectors and the fingerprint are
in `_secretengine`. A finding never holds the secret nor any part of it: where it is, the detector type
and the fingerprint. A baseline accepts a finding by file, type and fingerprint, so lines may move.

Rules: ``PW-SEC-101`` a secret (critical for private keys, cloud credentials and tokens that publish
code or packages; high otherwise), ``PW-SEC-102`` a file that could not be scanned (medium; low when it
is only over the size limit), ``PW-SEC-103`` a stale baseline entry (low), ``PW-SEC-200`` the summary.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location, Report, Severity
from pipewarden.supply._notebooks import notebook_parts
from pipewarden.supply._secretengine import (
    CRITICAL_TYPES,
    FINGERPRINT_SCHEME,
    Engine,
    detectors,
    secret_fingerprint,
    text_passes,
)

__all__ = [
    "SECRETS_BASELINE_NAME",
    "SECRETS_MAX_BYTES",
    "SECRETS_RULES",
    "find_secrets",
    "secret_fingerprint",
    "write_secrets_baseline",
]

logger = logging.getLogger(__name__)

SECRETS_RULES: dict[str, tuple[Severity, str]] = {
    "PW-SEC-101": (Severity.HIGH, "secret in a file"),
    "PW-SEC-102": (Severity.MEDIUM, "file could not be scanned for secrets"),
    "PW-SEC-103": (Severity.LOW, "stale secrets baseline entry"),
    "PW-SEC-200": (Severity.INFO, "files scanned for secrets"),
}
_FORMAT = "pipewarden-secrets-baseline/1"
SECRETS_BASELINE_NAME = ".secrets.baseline.json"
SECRETS_MAX_BYTES = 10 * 1024 * 1024

_FINGERPRINT = re.compile(r"[0-9a-f]{32}")

# Folders that hold no project text of their own: version control, installed packages, caches and
# pipewarden's workspace. A folder holding pyvenv.cfg (a virtual environment) is skipped too.
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".pipewarden",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
    }
)
# Lock files hold package hashes, not secrets, and thousands of them; detect-secrets' own lock-file
# filter adds the lock files of other ecosystems.
_LOCKFILES = frozenset(
    {
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
    }
)
_PYLOCK = re.compile(r"pylock(\.[^/]+)?\.toml")
_SNIFF = 8192


@dataclass(frozen=True, slots=True)
class _Secret:
    file: str
    kind: str
    fingerprint: str
    line: int
    also: tuple[str, ...]
    member: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Scan:
    root: Path
    secrets: list[_Secret] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    scanned: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)
    allowlisted: int = 0

    def problem(
        self, rel: str, reason: str, severity: Severity = Severity.MEDIUM, *, unread: bool = True
    ) -> None:
        self.problems.append(
            Finding(
                rule_id="PW-SEC-102",
                severity=severity,
                title=SECRETS_RULES["PW-SEC-102"][1],
                message=f"{rel}: {reason}" + ("; a secret in it would go unseen" if unread else ""),
                location=Location(path=rel),
                evidence={"reason": reason},
            )
        )


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    """Shell globs on the path relative to the scanned folder (``*`` crosses folders); ``build``,
    ``build/`` and ``build/**`` all match the folder, which is then skipped whole."""
    for pattern in patterns:
        wanted = pattern.strip()
        while wanted.endswith(("/**", "/")):
            wanted = wanted.removesuffix("/**").removesuffix("/")
        wanted = wanted.removeprefix("./")
        if wanted and fnmatch.fnmatchcase(rel, wanted):
            return True
    return False


def _is_lockfile(name: str) -> bool:
    from detect_secrets.filters.heuristic import is_lock_file

    return name in _LOCKFILES or bool(_PYLOCK.fullmatch(name)) or is_lock_file(name)


def _skip_reason(path: Path, rel: str, exclude: Sequence[str]) -> str | None:
    """Why a file met in a folder is not read (the summary counts each reason), or None."""
    from detect_secrets.filters.heuristic import is_non_text_file

    if path.is_symlink():
        return "symlinks"
    if _matches(rel, exclude):
        return "excluded"
    if _is_lockfile(path.name):
        return "lockfiles"
    if is_non_text_file(path.name):
        return "binary"
    return None


def _walk(scan: _Scan, exclude: Sequence[str]) -> Iterator[tuple[Path, str]]:
    def unreadable(exc: OSError) -> None:
        rel = Path(exc.filename).relative_to(scan.root).as_posix() if exc.filename else str(scan.root)
        scan.problem(rel, f"folder cannot be read ({exc.strerror or exc})")

    for folder, dirs, files in os.walk(scan.root, onerror=unreadable):
        here = Path(folder)
        prefix = here.relative_to(scan.root).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        kept = []
        for name in sorted(dirs):
            sub = here / name
            if sub.is_symlink():
                scan.skipped["symlinks"] += 1
            elif _matches(prefix + name, exclude):
                scan.skipped["excluded"] += 1
            elif name in _SKIP_DIRS or (sub / "pyvenv.cfg").is_file():
                scan.skipped["folders"] += 1
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            reason = _skip_reason(here / name, prefix + name, exclude)
            if reason:
                scan.skipped[reason] += 1
            else:
                yield here / name, prefix + name


def _read(scan: _Scan, path: Path, rel: str, *, named: bool, max_bytes: int) -> str | None:
    """The file's text, or None after counting or reporting why it was not read. A file named on the
    command line that is not text is reported; one met in a folder is counted."""
    # Opened without blocking (a FIFO would wait for a writer for ever) and, inside a folder, without
    # following a symlink swapped in since the walk saw a file; then judged by what was opened.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if named else getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.fdopen(os.open(path, flags), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                if named:
                    scan.problem(rel, "not a regular file")
                else:
                    scan.skipped["special"] += 1
                return None
            data = handle.read(_SNIFF)
            if b"\x00" in data:
                if named:
                    scan.problem(rel, "binary, not scanned")
                else:
                    scan.skipped["binary"] += 1
                return None
            data += handle.read(max(max_bytes + 1 - len(data), 0))
    except OSError as exc:
        scan.problem(rel, f"cannot be read ({exc.strerror or exc})")
        return None
    if len(data) > max_bytes:
        size = max(info.st_size, len(data))
        scan.problem(rel, f"larger than the {max_bytes}-byte limit ({size} bytes)", Severity.LOW)
        return None
    # Secrets are ASCII; a file in another encoding is still scanned, its other characters replaced.
    return data.decode("utf-8-sig", errors="replace")


def _scan_file(scan: _Scan, engine: Engine, text: str, rel: str) -> None:
    extra: list[list[str]] = []
    if rel.endswith(".ipynb"):
        try:
            parts, suffix = notebook_parts(text)
        except ValueError as exc:
            scan.problem(rel, f"not a readable notebook ({exc}); scanned as plain text instead", unread=False)
            # Its code is in JSON strings: read them with their quotes unescaped too.
            extra.append([line.replace('\\"', '"') for line in text.splitlines()])
        else:
            for part in parts:
                for number, kind, fp, also in engine.scan([part.lines], rel + (suffix if part.code else "")):
                    where: dict[str, Any] = {"cell": part.cell, "output": part.output, "media": part.media}
                    member = f"{part.member} line {number}"
                    scan.secrets.append(_Secret(rel, kind, fp, number, also, member, where))
            return
    for number, kind, fp, also in engine.scan([*text_passes(text, rel), *extra], rel):
        scan.secrets.append(_Secret(rel, kind, fp, number, also))


def _scan(path: Path, exclude: Sequence[str], max_bytes: int) -> _Scan:
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    named = not path.is_dir()
    scan = _Scan(root=path.parent if named else path)
    files = [(path, path.name)] if named else _walk(scan, exclude)
    with detectors() as plugins:
        engine = Engine(plugins)
        for file, rel in files:
            text = _read(scan, file, rel, named=named, max_bytes=max_bytes)
            if text is not None:
                scan.scanned.add(rel)
                _scan_file(scan, engine, text, rel)
    scan.allowlisted = engine.allowlisted
    logger.info("%s: %d files scanned, %d secrets", path, len(scan.scanned), len(scan.secrets))
    return scan


# -- the baseline -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    file: str
    kind: str
    fingerprint: str
    reason: str


def _load_baseline(path: Path) -> list[_Entry]:
    """The entries of a baseline file; ConfigError naming the file and what is wrong with it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such secrets baseline (write one with --update-baseline)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the secrets baseline ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not a secrets baseline: invalid JSON at line {exc.lineno}") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        foreign = isinstance(doc, dict) and "plugins_used" in doc
        hint = (
            " (a detect-secrets baseline? pipewarden writes its own with --update-baseline)"
            if foreign
            else ""
        )
        raise ConfigError(f"{path}: not a secrets baseline: format is not {_FORMAT!r}{hint}")
    unknown = sorted(set(doc) - {"format", "fingerprint", "accepted"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}")
    if doc.get("fingerprint") != FINGERPRINT_SCHEME:
        raise ConfigError(
            f"{path}: fingerprints made with {doc.get('fingerprint')!r}, not {FINGERPRINT_SCHEME!r}: "
            "write it again with --update-baseline"
        )
    accepted = doc.get("accepted")
    if not isinstance(accepted, list):
        raise ConfigError(f"{path}: 'accepted' must be a list of entries")
    entries = []
    for number, item in enumerate(accepted, 1):
        where = f"{path}: accepted entry #{number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be an object")
        extra = sorted(set(item) - {"file", "type", "fingerprint", "reason"})
        if extra:
            raise ConfigError(f"{where}: unknown key {extra[0]!r}")
        file, kind, fp, reason = (item.get(k) for k in ("file", "type", "fingerprint", "reason"))
        if not isinstance(file, str) or not file or not isinstance(kind, str) or not kind:
            raise ConfigError(f"{where}: needs a file and a type")
        if not isinstance(fp, str) or not _FINGERPRINT.fullmatch(fp):
            raise ConfigError(f"{where}: fingerprint must be 32 lower-case hex digits")
        if reason is not None and not isinstance(reason, str):
            raise ConfigError(f"{where}: reason must be text")
        entries.append(_Entry(file, kind, fp, reason or ""))
    return entries


def write_secrets_baseline(
    path: Path, baseline: Path, *, exclude: Sequence[str] = (), max_bytes: int = SECRETS_MAX_BYTES
) -> int:
    """Accept every secret `path` holds now: write them to `baseline` (atomically) and return how many.

    Each entry holds the file (relative to `path`), the detector type and the fingerprint, never the
    secret, and a ``reason`` for a person to fill in; reasons already in the baseline are kept. Entries
    that match nothing any more are dropped. A malformed existing baseline is an error, not overwritten.
    """
    from pipewarden.crypto import write_atomic

    previous = _load_baseline(baseline) if baseline.exists() else []
    reasons = {(e.file, e.kind, e.fingerprint): e.reason for e in previous}
    keys = sorted({(s.file, s.kind, s.fingerprint) for s in _scan(path, exclude, max_bytes).secrets})
    doc = {
        "format": _FORMAT,
        "fingerprint": FINGERPRINT_SCHEME,
        "accepted": [
            {"file": f, "type": k, "fingerprint": fp, "reason": reasons.get((f, k, fp), "")}
            for f, k, fp in keys
        ],
    }
    write_atomic(baseline, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode(), mode=0o644)
    return len(keys)


# -- the report -------------------------------------------------------------------------------------


def _secret_finding(secret: _Secret) -> Finding:
    where = f"line {secret.line}" if secret.member is None else secret.member
    advice = "remove it and rotate it: whoever can read the file or its history has it"
    if secret.where.get("output") is not None:
        advice = "clear the notebook's outputs and rotate it: whoever can read the file or its history has it"
    return Finding(
        rule_id="PW-SEC-101",
        severity=Severity.CRITICAL if secret.kind in CRITICAL_TYPES else Severity.HIGH,
        title=SECRETS_RULES["PW-SEC-101"][1],
        message=f"{secret.kind} in {secret.file} {where} (fingerprint {secret.fingerprint}); {advice}",
        location=Location(path=secret.file, row=secret.line)
        if secret.member is None
        else Location(path=secret.file, member=secret.member),
        evidence={
            "type": secret.kind,
            "fingerprint": secret.fingerprint,
            "line": secret.line,
            **{k: v for k, v in secret.where.items() if v is not None},
            "also_matched": list(secret.also),
        },
        references=("CWE-798",),
    )


def _stale(entry: _Entry, baseline: Path) -> Finding:
    return Finding(
        rule_id="PW-SEC-103",
        severity=Severity.LOW,
        title=SECRETS_RULES["PW-SEC-103"][1],
        message=f"{baseline}: the accepted {entry.kind} in {entry.file} (fingerprint {entry.fingerprint}) "
        "is no longer there; remove the entry (--update-baseline) so it cannot accept the secret again",
        location=Location(path=str(baseline)),
        evidence={"file": entry.file, "type": entry.kind, "fingerprint": entry.fingerprint},
    )


def find_secrets(
    path: Path,
    *,
    baseline: Path | None = None,
    exclude: Sequence[str] = (),
    max_bytes: int = SECRETS_MAX_BYTES,
) -> Report:
    """Scan a file or folder for secrets; findings the `baseline` accepts are counted, not reported.

    `exclude` holds glob patterns relative to `path`. Version-control folders, virtual environments,
    ``node_modules``, caches, the ``.pipewarden`` workspace, lock files and binary files are skipped and
    counted in the summary; a file over `max_bytes` or one that cannot be read is a finding.

    >>> report = find_secrets(Path("."), baseline=Path(".secrets.baseline.json"))  # doctest: +SKIP
    """
    scan = _scan(path, exclude, max_bytes)
    entries = _load_baseline(baseline) if baseline is not None else []
    accepted_keys = {(e.file, e.kind, e.fingerprint) for e in entries}
    findings = list(scan.problems)
    used: set[tuple[str, str, str]] = set()
    accepted = 0
    for secret in scan.secrets:
        key = (secret.file, secret.kind, secret.fingerprint)
        if key in accepted_keys:
            used.add(key)
            accepted += 1
        else:
            findings.append(_secret_finding(secret))
    stale = [
        e
        for e in entries
        if (e.file, e.kind, e.fingerprint) not in used
        and (e.file in scan.scanned or not (scan.root / e.file).exists())
    ]
    if baseline is not None:
        findings.extend(_stale(e, baseline) for e in stale)
    reported = len(scan.secrets) - accepted
    skipped = {k: v for k, v in sorted(scan.skipped.items()) if v}
    skipped_text = ", ".join(f"{v} {k}" for k, v in skipped.items())
    findings.append(
        Finding(
            rule_id="PW-SEC-200",
            severity=Severity.INFO,
            title=SECRETS_RULES["PW-SEC-200"][1],
            message=f"{len(scan.scanned)} files: {reported} secrets reported, {accepted} accepted by "
            f"the baseline, {scan.allowlisted} allowlisted inline, {len(stale)} stale baseline entries"
            + (f"; skipped {skipped_text}" if skipped else ""),
            location=Location(path=str(path)),
            evidence={
                "files": len(scan.scanned),
                "secrets": reported,
                "accepted": accepted,
                "allowlisted": scan.allowlisted,
                "stale": len(stale),
                "baseline": str(baseline) if baseline is not None else None,
                "skipped": skipped,
            },
        )
    )
    return Report.build(command="secrets", findings=findings, targets=len(scan.scanned))
