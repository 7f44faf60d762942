"""Compressed streams: gzip, bzip2, xz, lzma-alone, zlib and LZ4 frames.

joblib writes its compressed dumps in each of these (``compress=('zlib', 3)``
and so on), and any raw pickle can be compressed by hand; the scanner
decompresses as a stream, under the decompressed-bytes and ratio limits, and
scans what comes out by content.
"""

from __future__ import annotations

import io
import zlib
from typing import TYPE_CHECKING, BinaryIO

from pipewarden.scan._context import LimitHit
from pipewarden.scan._formats._interface import FormatError, FormatScanner, child
from pipewarden.scan._formats._pickle import looks_like_pickle, scan_pickle_stream
from pipewarden.scan._input import BytesInput, Input, spool

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine

__all__ = ["CompressedScanner", "compression_of"]

# joblib's own zlib format (numpy_pickle_utils: _ZLIB_PREFIX) starts with b"ZF".
_ZLIB_HEADS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")


def compression_of(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if head[:2] == b"ZF":
        return "joblib-zlib"
    if head[:2] in _ZLIB_HEADS:
        return "zlib"
    if len(head) >= 13 and head[0] == 0x5D and head[1:3] == b"\x00\x00":
        return "lzma"
    return None


class _ZlibReader(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._d = zlib.decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            if self._d.eof:
                return 0
            data = self._raw.read(1 << 20)
            if not data:
                self._pending = self._d.flush()
                if not self._pending:
                    if not self._d.eof:
                        raise EOFError("zlib stream is truncated")
                    return 0
                break
            try:
                self._pending = self._d.decompress(data)
            except zlib.error as exc:
                raise OSError(str(exc)) from exc
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open(kind: str, raw: BinaryIO) -> BinaryIO:
    # The codec modules are imported on use: most scans meet none of them.
    import bz2
    import gzip
    import lzma

    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if kind in ("xz", "lzma"):
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameFile(raw, "rb")  # type: ignore[no-any-return]
    if kind == "joblib-zlib":
        raw.read(2)
    return io.BufferedReader(_ZlibReader(raw))


def _lzma_error() -> type[Exception]:
    import lzma

    return lzma.LZMAError


class _Counted(io.RawIOBase):
    """Counts decompressed bytes against the scan limits while passing them on."""

    def __init__(self, inner: BinaryIO, ctx: ScanContext, budget: int) -> None:
        self._inner = inner
        self._ctx = ctx
        self._budget = budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except (OSError, EOFError, ValueError, zlib.error, _lzma_error()) as exc:
            raise FormatError(f"corrupt compressed data: {exc}") from exc
        n = len(data)
        buffer[:n] = data
        self.count += n
        self._ctx.count_decompressed(n)
        if self.count > self._budget:
            raise LimitHit("max_compression_ratio", f"expands past {self._budget} bytes")
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


class _StreamInput(Input):
    """A one-shot decompressing stream presented as an Input (no seeking back)."""

    def __init__(self, make: object, size: int) -> None:
        self._make = make
        self.size = size

    def open(self) -> BinaryIO:
        return self._make()  # type: ignore[operator, no-any-return]


class CompressedScanner(FormatScanner):
    name = "compressed"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return compression_of(head) is not None

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        kind = compression_of(inp.head(16))
        assert kind is not None  # noqa: S101 - sniff() said so
        ctx.formats.add(kind)
        budget = max(inp.size, 1) * ctx.limits.max_compression_ratio + (1 << 20)
        where = child(member, f"<{kind}>")

        def opened() -> BinaryIO:
            return io.BufferedReader(_Counted(_open(kind, inp.open()), ctx, budget), 1 << 20)

        try:
            with opened() as stream:
                head = stream.read(64)
            if not head:
                raise FormatError(f"{kind} stream holds no data")
            if looks_like_pickle(head, BytesInput(head)):
                # Stream the pickle straight out of the decompressor: no copy on disk.
                scan_pickle_stream(_StreamInput(opened, size=-1), ctx, where)
                return
            with opened() as stream:
                inner = spool(iter(lambda: stream.read(1 << 20), b""))
            engine.scan_input(inner, ctx, where, depth + 1, expected_model=True)
        except LimitHit as exc:
            if exc.limit == "max_compression_ratio":
                ctx.add(
                    "PW-SCAN-206",
                    member=where,
                    message=f"{kind} data {exc} ({ctx.limits.max_compression_ratio}x its compressed size); "
                    "not scanned further",
                    evidence={"compressed": inp.size},
                )
                return
            raise
