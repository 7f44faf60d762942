"""`scan_path` and `scan_bytes`: the scan part's entry points."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from pipewarden.errors import ScanInputError
from pipewarden.findings import Finding, Report
from pipewarden.scan._engine import Engine, iter_files
from pipewarden.scan._input import BytesInput, FileInput
from pipewarden.scan._limits import ScanLimits
from pipewarden.scan._policy import ScanPolicy

__all__ = ["scan_bytes", "scan_path"]

Progress = Callable[[str, int, int], None]


def _engine(policy: ScanPolicy | None, limits: ScanLimits | None) -> Engine:
    return Engine(policy=policy or ScanPolicy.default(), limits=limits or ScanLimits())


def scan_path(
    *paths: str | os.PathLike[str],
    policy: ScanPolicy | None = None,
    limits: ScanLimits | None = None,
    progress: Progress | None = None,
    assume_model: bool = True,
) -> Report:
    """Scan files, folders (recursively) and archives; return one `Report`.

    Formats are recognised by content. A folder's files are each a target; a
    file named directly is expected to be a model, so an unknown format there
    is a finding, unless `assume_model` is False: then a file named directly
    is judged as in a folder (any model format found by content is scanned;
    an unrecognised file with no model suffix, a CSV say, is no finding).
    Raises `ScanInputError` if a path does not exist.

        >>> report = scan_path("models/")
        >>> report.exit_code(Severity.MEDIUM)
    """
    if not paths:
        raise ScanInputError("no path to scan")
    engine = _engine(policy, limits)
    targets: list[tuple[Path, bool]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            targets.extend((f, False) for f in iter_files(p))
        elif p.exists() or p.is_symlink():
            targets.append((p, assume_model))
        else:
            raise ScanInputError(f"{p}: no such file or folder")
    findings: list[Finding] = []
    for i, (path, named) in enumerate(targets):
        if progress is not None:
            progress(str(path), i, len(targets))
        findings.extend(_scan_file(engine, path, named))
    return Report.build(command="scan", findings=findings, targets=len(targets))


def _scan_file(engine: Engine, path: Path, named: bool) -> Iterable[Finding]:
    ctx = engine.context(str(path))
    if path.is_symlink() and not path.exists():
        ctx.add("PW-SCAN-208", member=None, message=f"broken symbolic link to {os.readlink(path)!r}")
        return ctx.findings
    try:
        inp = FileInput(path)
    except OSError as exc:
        ctx.add("PW-SCAN-208", member=None, message=f"cannot be read: {exc.strerror or exc}")
        return ctx.findings
    if not path.is_file():
        ctx.add("PW-SCAN-209", member=None, message="not a regular file")
        return ctx.findings
    engine.scan_input(inp, ctx, None, 0, expected_model=named)
    return ctx.findings


def scan_bytes(
    data: bytes,
    *,
    name: str = "<bytes>",
    policy: ScanPolicy | None = None,
    limits: ScanLimits | None = None,
) -> Report:
    """Scan bytes already in memory, exactly as `scan_path` scans a file named `name`."""
    engine = _engine(policy, limits)
    ctx = engine.context(name)
    engine.scan_input(BytesInput(data), ctx, None, 0, expected_model=True)
    return Report.build(command="scan", findings=ctx.findings, targets=1)
