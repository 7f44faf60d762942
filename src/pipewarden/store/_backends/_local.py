"""Objects as files under a folder: temporary file, fsync, then rename (or link, for exclusive)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pipewarden.store._backends._interface import (
    Backend,
    BackendError,
    ObjectExists,
    ObjectNotFound,
    ObjectWriter,
    check_key,
)

__all__ = ["LocalBackend"]

_TMP = ".tmp"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Writer:
    def __init__(self, fh: BinaryIO, failed: str) -> None:
        self._fh = fh
        self._failed = failed

    def write(self, data: bytes) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            raise BackendError(f"{self._failed}: {exc.strerror or exc}") from exc


class LocalBackend(Backend):
    """A folder; files are written beside their destination's root and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        try:
            (self.root / _TMP).mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BackendError(f"{self.root}: cannot create the store folder: {exc.strerror}") from None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _tmp(self) -> Path:
        return self.root / _TMP / f"{secrets.token_hex(12)}.part"

    def _publish(self, tmp: Path, key: str, *, exclusive: bool) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if exclusive:
            try:
                # link() fails if the name is taken, atomically: the POSIX way to create once.
                os.link(tmp, final)
            except FileExistsError:
                raise ObjectExists(f"{self.location}: {key} exists already") from None
            finally:
                tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(final.parent)

    @contextmanager
    def writer(self, key: str) -> Iterator[ObjectWriter]:
        check_key(key)
        tmp = self._tmp()
        failed = f"{self.location}: cannot write {key}"
        try:
            try:
                fh = open(tmp, "xb")  # closed by the with below
                os.fchmod(fh.fileno(), 0o600)
            except OSError as exc:
                raise BackendError(f"{failed}: {exc.strerror or exc}") from exc
            with fh:
                # Only this file's own errors are the backend's; the caller's (reading
                # its source, say) pass through as they are.
                yield _Writer(fh, failed)
                try:
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError as exc:
                    raise BackendError(f"{failed}: {exc.strerror or exc}") from exc
            try:
                self._publish(tmp, key, exclusive=False)
            except OSError as exc:
                raise BackendError(f"{failed}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        check_key(key)
        tmp = self._tmp()
        try:
            with open(tmp, "xb") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self._publish(tmp, key, exclusive=exclusive)
        except OSError as exc:
            raise BackendError(f"{self.location}: cannot write {key}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.location}: {key} does not exist") from None
        except OSError as exc:
            raise BackendError(f"{self.location}: cannot read {key}: {exc.strerror}") from exc

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        try:
            fh = open(self._path(key), "rb")  # closed by the context manager below
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.location}: {key} does not exist") from None
        except OSError as exc:
            raise BackendError(f"{self.location}: cannot read {key}: {exc.strerror}") from exc
        with fh:
            yield fh

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def iter_keys(self, prefix: str) -> Iterator[str]:
        base = self.root
        # Walk only below the prefix's folder, not the whole store.
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(base).as_posix()
            if rel_dir == _TMP or rel_dir.startswith(_TMP + "/"):
                dirnames[:] = []
                continue
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def move(self, source: str, target: str) -> None:
        dst = self._path(target)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(self._path(source), dst)
            _fsync_dir(dst.parent)
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.location}: {source} does not exist") from None
        except OSError as exc:
            raise BackendError(f"{self.location}: cannot move {source} to {target}: {exc.strerror}") from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def stale_temporaries(self) -> list[str]:
        """Temporary files that a crashed writer left (invisible to readers)."""
        return sorted(p.name for p in (self.root / _TMP).glob("*.part"))
