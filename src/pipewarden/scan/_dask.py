"""`scan_path_dask`: `scan_path` with the files scanned as Dask tasks, a batch of files per task.

The targets are found on the client exactly as `scan_path` finds them (the same order); each task scans
its files with its own `Engine` on a worker and returns their findings; the client puts them back in the
targets' order, so the report is the one `scan_path` gives. A task that fails or whose worker dies is a
PW-SCAN-208 finding on every file of its batch: never a pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipewarden.errors import ScanInputError
from pipewarden.findings import Finding, Report
from pipewarden.scan._api import _scan_file
from pipewarden.scan._context import ScanContext
from pipewarden.scan._engine import Engine, iter_files
from pipewarden.scan._limits import ScanLimits
from pipewarden.scan._policy import ScanPolicy

__all__ = ["DEFAULT_BATCH_BYTES", "DEFAULT_BATCH_FILES", "scan_path_dask"]

#: Most files per task: by default a scan is cut into about `_TASKS_PER_WORKER` tasks per worker (small
#: files cost less to scan than a task costs to schedule), at most this many files each.
DEFAULT_BATCH_FILES = 1024
_TASKS_PER_WORKER = 8
#: Bytes per task: a batch is closed early when its files add up to this much.
DEFAULT_BATCH_BYTES = 256 << 20

Progress = Callable[[str, int, int], None]
Target = tuple[str, bool]  # a path as a string (the same on every machine), and whether it was named


def _targets(paths: tuple[str | os.PathLike[str], ...], assume_model: bool) -> list[Target]:
    """The files `scan_path` scans, in its order."""
    targets: list[Target] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            targets.extend((str(f), False) for f in iter_files(p))
        elif p.exists() or p.is_symlink():
            targets.append((str(p), assume_model))
        else:
            raise ScanInputError(f"{p}: no such file or folder")
    return targets


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _batches(targets: list[Target], *, files: int, size: int) -> list[list[Target]]:
    """Consecutive targets, at most `files` and about `size` bytes per batch (a larger file goes alone)."""
    batches: list[list[Target]] = []
    current: list[Target] = []
    held = 0
    for target in targets:
        weight = _size(target[0])
        if current and (len(current) >= files or held + weight > size):
            batches.append(current)
            current, held = [], 0
        current.append(target)
        held += weight
    if current:
        batches.append(current)
    return batches


def _scan_batch(batch: list[Target], policy: ScanPolicy, limits: ScanLimits) -> list[list[Finding]]:
    """On a worker: each file's findings, as `scan_path` gives them."""
    engine = Engine(policy=policy, limits=limits)
    return [list(_scan_file(engine, Path(path), named)) for path, named in batch]


def _failed(
    batch: list[Target], policy: ScanPolicy, limits: ScanLimits, error: BaseException
) -> list[Finding]:
    findings: list[Finding] = []
    for path, _ in batch:
        ctx = ScanContext(path=path, policy=policy, limits=limits)
        ctx.add(
            "PW-SCAN-208",
            member=None,
            message="cannot be scanned: the cluster task failed "
            f"({type(error).__name__}: {str(error)[:200]})",
            evidence={"error": type(error).__name__, "engine": "dask"},
        )
        findings.extend(ctx.findings)
    return findings


@contextmanager
def _connected(client: Any, scheduler: str | None) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from pipewarden.engine import dask_client

    with dask_client(scheduler) as made:
        yield made


def scan_path_dask(
    *paths: str | os.PathLike[str],
    policy: ScanPolicy | None = None,
    limits: ScanLimits | None = None,
    progress: Progress | None = None,
    assume_model: bool = True,
    scheduler: str | None = None,
    client: Any = None,
    batch_files: int | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> Report:
    """`scan_path` on a Dask cluster: the same report, the files scanned by the workers (which must see
        them at the same paths). `client` is a `distributed.Client` to use; else `scheduler` is the address of
        one to connect to; with neither, a local cluster is started for the call. A task scans `batch_files`
    files (default: about eight tasks per worker, at most `DEFAULT_BATCH_FILES` files) of at most
    `batch_bytes` bytes together (a larger file goes alone). Raises `ScanInputError` if a
        path does not exist, `ConfigError` if Dask is not installed or the scheduler cannot be reached.

            >>> report = scan_path_dask("hub/", scheduler="tls://scheduler:8786")  # doctest: +SKIP
    """
    if not paths:
        raise ScanInputError("no path to scan")
    if (batch_files is not None and batch_files < 1) or batch_bytes < 1:
        raise ScanInputError(f"batches of {batch_files} files and {batch_bytes} bytes: both must be positive")
    policy = policy or ScanPolicy.default()
    limits = limits or ScanLimits()
    targets = _targets(paths, assume_model)
    findings: list[Finding] = []
    done = 0
    with _connected(client, scheduler) as connected:
        from pipewarden.engine import in_order

        workers = max(1, len(connected.scheduler_info(n_workers=-1).get("workers", {})))
        if batch_files is None:
            batch_files = min(DEFAULT_BATCH_FILES, -(-len(targets) // (_TASKS_PER_WORKER * workers)) or 1)
        batches = _batches(targets, files=batch_files, size=batch_bytes)
        window = 4 * workers
        for outcome in in_order(connected, _scan_batch, batches, window=window, policy=policy, limits=limits):
            batch = batches[outcome.index]
            if outcome.error is not None:
                findings.extend(_failed(batch, policy, limits, outcome.error))
            else:
                if len(outcome.value) != len(batch):  # never: but a short answer must not pass files
                    findings.extend(_failed(batch, policy, limits, RuntimeError("a short answer")))
                    continue
                for per_file in outcome.value:
                    findings.extend(per_file)
            done += len(batch)
            if progress is not None:
                progress(batch[-1][0], done, len(targets))
    return Report.build(command="scan", findings=findings, targets=len(targets))
