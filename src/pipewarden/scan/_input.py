"""What a format scanner reads: a file, a range of a file, or bytes in memory.

Members of archives are presented as views over their parent (stored zip
members) or as spooled decompressed copies, so nothing is read twice and
nothing large is held in memory.
"""

from __future__ import annotations

import io
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import BinaryIO

__all__ = ["BytesInput", "FileInput", "Input", "WindowInput", "spool"]

_SPOOL_IN_MEMORY = 64 << 20


class Input(ABC):
    """A readable, seekable run of bytes with a size."""

    size: int

    @abstractmethod
    def open(self) -> BinaryIO:
        """A fresh binary stream positioned at byte 0 of this input."""

    # Every format's sniffer looks at the first and last bytes: read them once.
    _HEAD = 4096
    _TAIL = 22 + 0xFFFF  # a zip end record with the longest comment

    def head(self, n: int) -> bytes:
        cached: bytes | None = self.__dict__.get("_head")
        if cached is None or (n > len(cached) and len(cached) == self._HEAD):
            with self.open() as f:
                cached = f.read(max(n, self._HEAD))
            self.__dict__["_head"] = cached
        return cached[:n]

    def tail(self, n: int) -> bytes:
        if n > self._TAIL:
            with self.open() as f:
                f.seek(max(0, self.size - n))
                return f.read(n)
        cached: bytes | None = self.__dict__.get("_tail")
        if cached is None:
            with self.open() as f:
                f.seek(max(0, self.size - self._TAIL))
                cached = f.read(self._TAIL)
            self.__dict__["_tail"] = cached
        return cached[len(cached) - min(n, len(cached)) :]

    def read_range(self, offset: int, n: int) -> bytes:
        with self.open() as f:
            f.seek(offset)
            return f.read(n)

    def read_all(self) -> bytes:
        with self.open() as f:
            return f.read()


class FileInput(Input):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.size = os.path.getsize(self.path)

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


class BytesInput(Input):
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = bytes(data) if not isinstance(data, bytes) else data
        self.size = len(self.data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)

    def read_all(self) -> bytes:
        return self.data


class _WindowIO(io.RawIOBase):
    """A read-only, seekable view of bytes [start, start+length) of another stream."""

    def __init__(self, raw: BinaryIO, start: int, length: int) -> None:
        self._raw = raw
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        else:
            pos = self._length + offset
        self._pos = max(0, pos)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        remaining = self._length - self._pos
        if remaining <= 0:
            return 0
        n = min(len(buffer), remaining)
        self._raw.seek(self._start + self._pos)
        data = self._raw.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class WindowInput(Input):
    """Bytes [offset, offset+length) of a parent input (a stored zip member, a tar member)."""

    def __init__(self, parent: Input, offset: int, length: int) -> None:
        self.parent = parent
        self.offset = offset
        self.size = max(0, min(length, parent.size - offset))

    def open(self) -> BinaryIO:
        if isinstance(self.parent, BytesInput):
            return io.BytesIO(self.parent.data[self.offset : self.offset + self.size])
        return io.BufferedReader(_WindowIO(self.parent.open(), self.offset, self.size), 1 << 20)


class _TempFileInput(Input):
    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size

    def open(self) -> BinaryIO:
        return open(self.path, "rb")

    def __del__(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


def spool(chunks: Iterable[bytes]) -> Input:
    """Collect decompressed chunks: in memory while small, in a private temp file beyond 64 MiB."""
    parts: list[bytes] = []
    total = 0
    iterator = iter(chunks)
    for chunk in iterator:
        parts.append(chunk)
        total += len(chunk)
        if total > _SPOOL_IN_MEMORY:
            fd, path = tempfile.mkstemp(prefix="pipewarden-", suffix=".spool")
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    out.write(part)
                parts.clear()
                for more in iterator:
                    out.write(more)
                    total += len(more)
            return _TempFileInput(path, total)
    return BytesInput(b"".join(parts))
