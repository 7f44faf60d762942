"""The file being stored: read with errors that name it, watched for changes, observed chunk by chunk."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipewarden.errors import StoreError

if TYPE_CHECKING:
    import hashlib

__all__ = ["SourceReader", "file_identity", "observer"]


def file_identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class SourceReader:
    """The file being stored, whose read errors name it (not the object being written)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._fh = open(path, "rb")  # closed in __exit__
        except OSError as exc:
            raise StoreError(f"{path}: cannot be read: {exc.strerror}") from None

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def read(self, n: int = -1) -> bytes:
        try:
            return self._fh.read(n)
        except OSError as exc:
            raise StoreError(f"{self._path}: cannot be read: {exc.strerror}") from None


def observer(
    digest: hashlib._Hash, progress: Callable[[int, int], None] | None, total: int
) -> Callable[[bytes], object]:
    """What sees each plaintext chunk: the hash, and the caller's progress callback (bytes done, total)."""
    if progress is None:
        return digest.update
    done = 0

    def observe(chunk: bytes) -> None:
        nonlocal done
        digest.update(chunk)
        done += len(chunk)
        progress(done, total)

    return observe
