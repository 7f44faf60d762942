"""Walking and reading a project's files for the secrets scan: what is read, what is skipped and why,
and the limits that keep a scan bounded (file size, candidates per file). See `_secrets` for the
baseline and the report."""

from __future__ import annotations

import fnmatch
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
from pipewarden.findings import Finding, Location, Severity
from pipewarden.supply._notebooks import notebook_parts
from pipewarden.supply._secretengine import Candidates, Engine, detectors, text_passes

__all__ = [
    "NOTEBOOK_MAX_BYTES",
    "SECRETS_MAX_BYTES",
    "SECRETS_MAX_CANDIDATES",
    "SECRETS_RULES",
    "Scan",
    "Secret",
    "scan_path",
]

logger = logging.getLogger(__name__)

SECRETS_RULES: dict[str, tuple[Severity, str]] = {
    "PW-SEC-101": (Severity.HIGH, "secret in a file"),
    "PW-SEC-102": (Severity.MEDIUM, "file could not be scanned for secrets"),
    "PW-SEC-103": (Severity.LOW, "stale secrets baseline entry"),
    "PW-SEC-200": (Severity.INFO, "files scanned for secrets"),
}
SECRETS_MAX_BYTES = 10 * 1024 * 1024
# A notebook is read up to this size (its images, not scanned, are most of it); its text is then held to
# SECRETS_MAX_BYTES.
NOTEBOOK_MAX_BYTES = 200 * 1024 * 1024
# Distinct candidates fingerprinted per file: at tens of milliseconds each, 1,000 cost about half a
# minute; a file with more is data (test vectors, a dump) and is reported as such.
SECRETS_MAX_CANDIDATES = 1000

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
class Secret:
    file: str
    kind: str
    fingerprint: str
    line: int
    also: tuple[str, ...]
    member: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Scan:
    """One scan of `root` (the folder walked, or the folder of the file named). Every path it reports is
    `prefix` + the path relative to `root`: relative to the baseline's folder when the scan is inside it,
    so that a scan of part of a project names files as the project's baseline does."""

    root: Path
    base: Path
    prefix: str
    exclude: Sequence[str]
    named: str | None = None
    secrets: list[Secret] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    scanned: set[str] = field(default_factory=set)
    # Files read only in part: more candidates than are fingerprinted; a baseline entry unmatched there
    # may be for one of the others.
    partial: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)
    allowlisted: int = 0

    def show(self, rel: str) -> str:
        """A path relative to `root` as reported."""
        if rel in ("", "."):
            return self.prefix.rstrip("/") or "."
        return self.prefix + rel

    def problem(self, rel: str, reason: str, *, unread: bool = True) -> None:
        where = self.show(rel)
        self.problems.append(
            Finding(
                rule_id="PW-SEC-102",
                severity=Severity.MEDIUM,
                title=SECRETS_RULES["PW-SEC-102"][1],
                message=f"{where}: {reason}" + ("; a secret in it would go unseen" if unread else ""),
                location=Location(path=where),
                evidence={"reason": reason},
            )
        )

    def covers(self, file: str) -> bool:
        """True when a reported path `file` lies where this scan looks: the file named, or a file under
        the folder walked that no --exclude, skipped folder, lock-file or binary name keeps out."""
        if self.named is not None:
            return file == self.show(self.named)
        if not file.startswith(self.prefix):
            return False
        parts = file.removeprefix(self.prefix).split("/")
        if any(part in ("", ".", "..") for part in parts):
            return False
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if parts[depth - 1] in _SKIP_DIRS or _matches(folder, self.exclude):
                return False
            if (self.root / folder / "pyvenv.cfg").is_file():
                return False
        return _skip_reason(None, "/".join(parts), self.exclude) is None


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


def _skip_reason(path: Path | None, rel: str, exclude: Sequence[str]) -> str | None:
    """Why a file met in a folder is not read (the summary counts each reason), or None. Without a
    `path` (a file that is not there any more), only by its name."""
    from detect_secrets.filters.heuristic import is_non_text_file

    if path is not None and path.is_symlink():
        return "symlinks"
    if _matches(rel, exclude):
        return "excluded"
    name = rel.rpartition("/")[2]
    if _is_lockfile(name):
        return "lockfiles"
    if is_non_text_file(name):
        return "binary"
    return None


def _walk(scan: Scan) -> Iterator[tuple[Path, str]]:
    def unreadable(exc: OSError) -> None:
        rel = Path(exc.filename).relative_to(scan.root).as_posix() if exc.filename else ""
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
            elif _matches(prefix + name, scan.exclude):
                scan.skipped["excluded"] += 1
            elif name in _SKIP_DIRS or (sub / "pyvenv.cfg").is_file():
                scan.skipped["folders"] += 1
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            reason = _skip_reason(here / name, prefix + name, scan.exclude)
            if reason:
                scan.skipped[reason] += 1
            else:
                yield here / name, prefix + name


def _read(scan: Scan, path: Path, rel: str, *, max_bytes: int) -> str | None:
    """The file's text, or None after counting or reporting why it was not read. A file named on the
    command line that is not text is reported; one met in a folder is counted. A notebook is read up to
    a larger limit: its images are not scanned, and `_scan_file` limits the text that is."""
    named = scan.named is not None
    limit = max(max_bytes, NOTEBOOK_MAX_BYTES) if rel.endswith(".ipynb") else max_bytes
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
            data += handle.read(max(limit + 1 - len(data), 0))
    except OSError as exc:
        scan.problem(rel, f"cannot be read ({exc.strerror or exc})")
        return None
    if len(data) > limit:
        size = max(info.st_size, len(data))
        what = "notebook " if limit != max_bytes else ""
        scan.problem(
            rel, f"larger than the {limit}-byte {what}limit ({size} bytes); exclude it or raise --max-bytes"
        )
        return None
    # Secrets are ASCII; a file in another encoding is still scanned, its other characters replaced.
    return data.decode("utf-8-sig", errors="replace")


def _capped(scan: Scan, rel: str, candidates: Candidates) -> None:
    if candidates.over:
        scan.partial.add(scan.show(rel))
        scan.problem(
            rel,
            f"{candidates.total} distinct values the detectors flag, more than the {candidates.limit} a file "
            "is checked for: it looks like data (test vectors, a dump, generated keys); the first "
            f"{candidates.limit} are reported, the other {len(candidates.over)} are not. Exclude it "
            "(--exclude) if it holds no credentials",
            unread=False,
        )


def _scan_file(
    scan: Scan, engine: Engine, text: str, rel: str, *, max_bytes: int, max_candidates: int
) -> bool:
    """Scan one file's text; False when it was not scanned after all (a notebook over the limit)."""
    candidates = Candidates(max_candidates)
    extra: list[list[str]] = []
    if rel.endswith(".ipynb"):
        try:
            parts, suffix = notebook_parts(text)
        except ValueError as exc:
            if len(text.encode("utf-8", errors="replace")) > max_bytes:
                scan.problem(rel, f"not a readable notebook ({exc}), and over the {max_bytes}-byte limit")
                return False
            scan.problem(rel, f"not a readable notebook ({exc}); scanned as plain text instead", unread=False)
            # Its code is in JSON strings: read them with their quotes unescaped too.
            extra.append([line.replace('\\"', '"') for line in text.splitlines()])
        else:
            size = sum(part.size for part in parts)
            if size > max_bytes:
                scan.problem(
                    rel,
                    f"its text (sources, textual outputs and metadata; images are not counted) is {size} "
                    f"bytes, over the {max_bytes}-byte limit; raise --max-bytes",
                )
                return False
            for part in parts:
                name = rel + (suffix if part.code else "")
                for number, kind, fp, also in engine.scan([part.lines], name, candidates):
                    where: dict[str, Any] = {
                        "cell": part.cell,
                        "output": part.output,
                        "media": part.media,
                        "metadata": part.metadata or None,
                    }
                    member = f"{part.member} line {number}"
                    scan.secrets.append(Secret(scan.show(rel), kind, fp, number, also, member, where))
            _capped(scan, rel, candidates)
            return True
    for number, kind, fp, also in engine.scan([*text_passes(text, rel), *extra], rel, candidates):
        scan.secrets.append(Secret(scan.show(rel), kind, fp, number, also))
    _capped(scan, rel, candidates)
    return True


def scan_path(
    path: Path, *, exclude: Sequence[str], max_bytes: int, max_candidates: int, baseline: Path | None
) -> Scan:
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    named = not path.is_dir()
    root = path.parent if named else path
    # Paths are reported relative to the baseline's folder when the scan lies inside it, so entries
    # written from the root match a scan of one part of the tree and the other way round.
    base, prefix = root, ""
    if baseline is not None:
        folder, where = baseline.parent.resolve(), root.resolve()
        if where.is_relative_to(folder):
            base = baseline.parent
            prefix = where.relative_to(folder).as_posix()
            prefix = "" if prefix == "." else prefix + "/"
    scan = Scan(root=root, base=base, prefix=prefix, exclude=exclude, named=path.name if named else None)
    files = [(path, path.name)] if named else _walk(scan)
    with detectors() as plugins:
        engine = Engine(plugins)
        for file, rel in files:
            text = _read(scan, file, rel, max_bytes=max_bytes)
            if text is not None and _scan_file(
                scan, engine, text, rel, max_bytes=max_bytes, max_candidates=max_candidates
            ):
                scan.scanned.add(scan.show(rel))
    scan.allowlisted = engine.allowlisted
    logger.info("%s: %d files scanned, %d secrets", path, len(scan.scanned), len(scan.secrets))
    return scan
