"""Checkpoint files: every signed checkpoint is also written outside the database.

``<dir>/<size, 12 digits>.json`` holds one DSSE envelope; ``<dir>/latest.json``
a copy of the largest. An attacker who can rewrite the database cannot take
back what was exported, so keep (or copy) this folder where the database's
administrators cannot write.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from pipewarden.crypto import write_atomic

__all__ = ["LATEST", "checkpoint_file", "export_checkpoint", "exported_checkpoints"]

LATEST = "latest.json"
_NAME = re.compile(r"^(\d{12,20})\.json$")


def checkpoint_file(folder: Path, size: int) -> Path:
    return folder / f"{size:012d}.json"


def export_checkpoint(folder: Path, size: int, envelope: bytes) -> Path:
    """Write checkpoint `size` into `folder` (created 0700), and make it `latest.json` if it is newest."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = checkpoint_file(folder, size)
    write_atomic(path, envelope, mode=0o644)
    with _locked(folder):
        # Several processes export into one folder; under the lock latest.json only moves forward.
        if _size_of(folder / LATEST) < size:
            write_atomic(folder / LATEST, envelope, mode=0o644)
    return path


def exported_checkpoints(folder: Path) -> list[Path]:
    """Every checkpoint file in `folder`, smallest first, then latest.json (if any)."""
    if not folder.is_dir():
        return []
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)))
    paths = [p for _, p in found]
    if (folder / LATEST).is_file():
        paths.append(folder / LATEST)
    return paths


def _size_of(path: Path) -> int:
    """The size an exported checkpoint claims (unverified: only to order files); 0 if unreadable."""
    try:
        payload = base64.b64decode(json.loads(path.read_bytes())["payload"])
        size = json.loads(payload)["size"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return size if isinstance(size, int) else 0


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: one process per folder is assumed
        yield
        return
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
