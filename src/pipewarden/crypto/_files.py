"""Private files: written atomically with mode 0600, refused when others can read them."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from pipewarden.errors import KeyRingError

__all__ = ["check_private", "read_private", "write_atomic"]


def check_private(path: Path, *, what: str) -> None:
    """Refuse a key file that its group or other users may read or write (POSIX only)."""
    try:
        st = path.lstat()
    except FileNotFoundError as exc:
        raise KeyRingError(f"{path}: {what} does not exist (run 'pipewarden init')") from exc
    except OSError as exc:
        raise KeyRingError(f"{path}: {what} cannot be read: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise KeyRingError(f"{path}: {what} is a symbolic link; keep the key file itself here")
    if not stat.S_ISREG(st.st_mode):
        raise KeyRingError(f"{path}: {what} is not a regular file")
    if os.name == "posix" and st.st_mode & 0o077:
        raise KeyRingError(
            f"{path}: {what} is open to group or other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"refusing to use it. Run: chmod 600 {path}"
        )


def read_private(path: Path, *, what: str) -> bytes:
    check_private(path, what=what)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyRingError(f"{path}: {what} cannot be read: {exc.strerror}") from exc


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
