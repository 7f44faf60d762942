"""Private files: written atomically with mode 0600, refused when others can read them."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from pipewarden.errors import ConfigError, KeyRingError

__all__ = ["check_not_writable_by_others", "read_private", "write_atomic"]

_INIT_HINT = " (run 'pipewarden init')"


def _check_mode(path: Path, st: os.stat_result, *, what: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise KeyRingError(f"{path}: {what} is a symbolic link; keep the key file itself here")
    if not stat.S_ISREG(st.st_mode):
        raise KeyRingError(f"{path}: {what} is not a regular file")
    if os.name == "posix" and st.st_mode & 0o077:
        raise KeyRingError(
            f"{path}: {what} is open to group or other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"refusing to use it. Run: chmod 600 {path}"
        )


def read_private(path: Path, *, what: str, hint: str = _INIT_HINT) -> bytes:
    """Read a key file, checking the mode of the very file that is read (no symlink, no swap in between)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise KeyRingError(f"{path}: {what} does not exist{hint}") from exc
    except OSError as exc:
        if path.is_symlink():
            raise KeyRingError(f"{path}: {what} is a symbolic link; keep the key file itself here") from exc
        raise KeyRingError(f"{path}: {what} cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        _check_mode(path, os.fstat(fh.fileno()), what=what)
        try:
            return fh.read()
        except OSError as exc:
            raise KeyRingError(f"{path}: {what} cannot be read: {exc.strerror}") from exc


def check_not_writable_by_others(path: Path, *, what: str) -> None:
    """Refuse a file that decides what is trusted (a public key, the settings) if others may change it."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"{path}: {what} cannot be read: {exc.strerror}") from exc
    if os.name == "posix" and st.st_mode & 0o022:
        raise ConfigError(
            f"{path}: {what} is writable by group or other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"refusing to trust it. Run: chmod go-w {path}"
        )


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new one, never a mix."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write here: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
