"""Secrets in a project's files: code, notebooks (sources and outputs), YAML, env and config files.

Files are walked (never run; see `_secretscan`), each read as lines and as detect-secrets' transformers
rewrite them; notebooks cell by cell, output by output and their metadata (see `_notebooks`); the
detectors and the fingerprint are in `_secretengine`. A finding never holds the secret nor any part of
it: where it is, the detector type and the fingerprint. A baseline accepts a finding by file, type and
fingerprint, so lines may move; files are named relative to the baseline's folder when the scan is
inside it, so one baseline serves a scan of the whole project or of any part of it.

Rules: ``PW-SEC-101`` a secret (critical for private keys, cloud credentials and tokens that publish
code or packages; high otherwise), ``PW-SEC-102`` a file that could not be scanned, or not whole (over
the size limit, unreadable, more candidates than are fingerprinted: medium, since the gate fails at
medium), ``PW-SEC-103`` a stale baseline entry (low), ``PW-SEC-200`` the summary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location, Report, Severity
from pipewarden.supply._secretengine import CRITICAL_TYPES, FINGERPRINT_SCHEME, secret_fingerprint
from pipewarden.supply._secretscan import (
    NOTEBOOK_MAX_BYTES,
    SECRETS_MAX_BYTES,
    SECRETS_MAX_CANDIDATES,
    SECRETS_RULES,
    Scan,
    Secret,
    scan_path,
)

__all__ = [
    "NOTEBOOK_MAX_BYTES",
    "SECRETS_BASELINE_NAME",
    "SECRETS_MAX_BYTES",
    "SECRETS_MAX_CANDIDATES",
    "SECRETS_RULES",
    "find_secrets",
    "secret_fingerprint",
    "write_secrets_baseline",
]

_FORMAT = "pipewarden-secrets-baseline/1"
SECRETS_BASELINE_NAME = ".secrets.baseline.json"

_FINGERPRINT = re.compile(r"[0-9a-f]{32}")

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


def _is_stale(entry: _Entry, scan: Scan, used: set[tuple[str, str, str]]) -> bool:
    """True when the scan shows an entry accepts nothing: its file was read whole and the secret is not
    in it, or its file is gone from where the scan looked. An entry for a file the scan did not look at
    (another folder, excluded, not read) is left alone."""
    if (entry.file, entry.kind, entry.fingerprint) in used or entry.file in scan.partial:
        return False
    if entry.file in scan.scanned:
        return True
    return scan.covers(entry.file) and not (scan.base / entry.file).exists()


def write_secrets_baseline(
    path: Path,
    baseline: Path,
    *,
    exclude: Sequence[str] = (),
    max_bytes: int = SECRETS_MAX_BYTES,
    max_candidates: int = SECRETS_MAX_CANDIDATES,
) -> int:
    """Accept every secret `path` holds now: write them to `baseline` (atomically) and return how many
    entries it holds.

    Each entry holds the file (relative to the baseline's folder when `path` is inside it, else to
    `path`), the detector type and the fingerprint, never the secret, and a ``reason`` for a person to
    fill in; reasons already in the baseline are kept. Entries that match nothing any more (see
    `find_secrets`) are dropped; entries for files this scan did not look at are kept as they are, so
    updating from one folder leaves the rest of the project's baseline alone. A malformed existing
    baseline is an error, not overwritten.
    """
    from pipewarden.crypto import write_atomic

    previous = _load_baseline(baseline) if baseline.exists() else []
    scan = scan_path(
        path, exclude=exclude, max_bytes=max_bytes, max_candidates=max_candidates, baseline=baseline
    )
    found = {(s.file, s.kind, s.fingerprint) for s in scan.secrets}
    reasons = {(e.file, e.kind, e.fingerprint): e.reason for e in previous}
    kept = {(e.file, e.kind, e.fingerprint) for e in previous if not _is_stale(e, scan, found)}
    keys = sorted(found | kept)
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


def _secret_finding(secret: Secret) -> Finding:
    where = f"line {secret.line}" if secret.member is None else secret.member
    advice = "remove it and rotate it: whoever can read the file or its history has it"
    if secret.where.get("output") is not None:
        advice = "clear the notebook's outputs and rotate it: whoever can read the file or its history has it"
    elif secret.where.get("metadata"):
        advice = (
            "remove it from the notebook's metadata (papermill keeps the parameters a notebook ran with "
            "there) and rotate it: whoever can read the file or its history has it"
        )
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
    max_candidates: int = SECRETS_MAX_CANDIDATES,
) -> Report:
    """Scan a file or folder for secrets; findings the `baseline` accepts are counted, not reported.

    `exclude` holds glob patterns relative to `path`. Version-control folders, virtual environments,
    ``node_modules``, caches, the ``.pipewarden`` workspace, lock files and binary files are skipped and
    counted in the summary; a file whose text is over `max_bytes` (for a notebook: its text without
    images), one that cannot be read, and one holding more than `max_candidates` distinct candidates
    (only the first are fingerprinted and reported) are findings. When `path` is inside the baseline's
    folder, files are named relative to that folder (as the baseline names them), else relative to
    `path`; an entry is called stale only when the scan looked at its file.

    >>> report = find_secrets(Path("."), baseline=Path(".secrets.baseline.json"))  # doctest: +SKIP
    """
    entries = _load_baseline(baseline) if baseline is not None else []
    scan = scan_path(
        path, exclude=exclude, max_bytes=max_bytes, max_candidates=max_candidates, baseline=baseline
    )
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
    stale = [e for e in entries if _is_stale(e, scan, used)]
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
