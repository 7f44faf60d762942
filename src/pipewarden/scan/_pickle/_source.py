"""A forward-only byte source for the emulator: buffered, bounded, able to skip payloads.

Large payloads (tensor bytes inside a pickle, joblib array data) are skipped
with `seek` when the stream allows it, so scanning a file costs little more
than reading its opcodes.
"""

from __future__ import annotations

import io
from typing import BinaryIO

__all__ = ["EndOfData", "Source"]

# Small enough that payloads (tensor and array bytes) mostly fall outside the
# buffer and are skipped with seek, not read.
_CHUNK = 64 << 10


class EndOfData(Exception):
    """The stream ended inside an opcode or its argument."""

    def __init__(self, offset: int, wanted: int) -> None:
        super().__init__(f"data ends at byte {offset} ({wanted} more byte(s) expected)")
        self.offset = offset
        self.wanted = wanted


class Source:
    """Reads from a binary stream with a 1 MiB buffer and a byte position."""

    __slots__ = ("_buf", "_eof", "_file", "_pos", "_seekable", "_size", "_start")

    def __init__(self, file: BinaryIO, *, size: int | None = None) -> None:
        self._file = file
        self._buf = b""
        self._pos = 0  # position in _buf
        self._start = 0  # stream offset of _buf[0]
        self._eof = False
        try:
            self._seekable = file.seekable()
        except (AttributeError, ValueError, OSError):
            self._seekable = False
        if self._seekable:
            self._start = file.tell()
        self._size = size

    @classmethod
    def of_bytes(cls, data: bytes | bytearray | memoryview) -> Source:
        return cls(io.BytesIO(data), size=len(data))

    def tell(self) -> int:
        return self._start + self._pos

    def _fill(self, n: int) -> bool:
        """Make `n` bytes available at _pos; False if the stream ends first."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            return True
        if self._eof:
            return False
        parts = [self._buf[self._pos :]] if avail else []
        self._start += self._pos
        self._pos = 0
        while avail < n:
            chunk = self._file.read(max(_CHUNK, n - avail))
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            avail += len(chunk)
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
        return avail >= n

    def read(self, n: int) -> bytes:
        """Exactly `n` bytes, or `EndOfData`."""
        if n < 0:
            raise ValueError("negative read")
        if not self._fill(n):
            raise EndOfData(self.tell() + len(self._buf) - self._pos, n - (len(self._buf) - self._pos))
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def read_byte(self) -> int:
        """One byte as an int, or -1 at the end of the stream."""
        if self._pos < len(self._buf):
            b = self._buf[self._pos]
            self._pos += 1
            return b
        if not self._fill(1):
            return -1
        b = self._buf[self._pos]
        self._pos += 1
        return b

    def peek(self, n: int) -> bytes:
        """Up to `n` bytes without consuming them."""
        self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def readline(self, limit: int) -> bytes:
        """A line including its newline, at most `limit` bytes; `EndOfData` if none ends."""
        while True:
            idx = self._buf.find(b"\n", self._pos, self._pos + limit)
            if idx >= 0:
                line = self._buf[self._pos : idx + 1]
                self._pos = idx + 1
                return line
            have = len(self._buf) - self._pos
            if have >= limit:
                raise LineTooLong(self.tell(), limit)
            if not self._fill(have + 1):
                raise EndOfData(self.tell() + have, 1)

    def skip(self, n: int) -> None:
        """Consume `n` bytes without keeping them; `EndOfData` if fewer remain."""
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return
        if self._seekable:
            target = self._start + self._pos + n
            end = self._size if self._size is not None else self._stream_size()
            if target > end:
                raise EndOfData(end, target - end)
            self._file.seek(target)
            self._buf, self._pos, self._start = b"", 0, target
            return
        remaining = n - avail
        self._start += len(self._buf)
        self._buf, self._pos = b"", 0
        while remaining:
            chunk = self._file.read(min(remaining, _CHUNK))
            if not chunk:
                self._eof = True
                raise EndOfData(self._start, remaining)
            remaining -= len(chunk)
            self._start += len(chunk)

    def _stream_size(self) -> int:
        here = self._file.tell()
        end = self._file.seek(0, io.SEEK_END)
        self._file.seek(here)
        self._size = end
        return end

    def at_end(self) -> bool:
        return not self._fill(1)


class LineTooLong(Exception):
    def __init__(self, offset: int, limit: int) -> None:
        super().__init__(f"line at byte {offset} is longer than {limit} bytes")
        self.offset = offset
