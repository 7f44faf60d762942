"""A zip reader that reads archives the way PyTorch's reader does, and notes every oddity.

Python's `zipfile` refuses members whose CRC does not match or whose local
header names another file; PyTorch's reader (miniz) accepts both, so an
attacker can hide a pickle from zipfile-based scanners while torch.load still
runs it. This reader locates members through the central directory, uses the
local header only for its length fields, and reports differences instead of
stopping. Format: PKWARE APPNOTE.TXT 6.3.x, sections 4.3.12 to 4.3.16.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipewarden.scan._formats._interface import FormatError
from pipewarden.scan._input import Input

__all__ = ["ZipEntry", "ZipIndex", "find_eocd", "read_zip"]

_EOCD = b"PK\x05\x06"
_EOCD64_LOC = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_S_IFLNK = 0o120000


@dataclass(frozen=True, slots=True)
class ZipEntry:
    name: str
    method: int
    flags: int
    compressed_size: int
    size: int
    crc: int
    data_offset: int
    local_name: str
    is_symlink: bool

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 0x1)

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass(frozen=True, slots=True)
class ZipIndex:
    entries: tuple[ZipEntry, ...]
    start: int  # where the archive's first byte sits in the input (data may precede it)
    anomalies: tuple[str, ...]


def find_eocd(inp: Input) -> int | None:
    """Offset of the end-of-central-directory record, or None if `inp` is no zip."""
    if inp.size < 22:
        return None
    tail_len = min(inp.size, 22 + 0xFFFF)
    tail = inp.tail(tail_len)
    base = inp.size - tail_len
    idx = tail.rfind(_EOCD)
    while idx >= 0:
        if idx + 22 <= len(tail):
            (comment_len,) = struct.unpack_from("<H", tail, idx + 20)
            if idx + 22 + comment_len <= len(tail):
                return base + idx
        idx = tail.rfind(_EOCD, 0, idx)
    return None


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x0001:
            fields = []
            i = 0
            for wanted in (size == 0xFFFFFFFF, csize == 0xFFFFFFFF, offset == 0xFFFFFFFF):
                if wanted:
                    if i + 8 > len(body):
                        raise FormatError("zip64 extra field is too short")
                    fields.append(struct.unpack_from("<Q", body, i)[0])
                    i += 8
                else:
                    fields.append(None)
            size = fields[0] if fields[0] is not None else size
            csize = fields[1] if fields[1] is not None else csize
            offset = fields[2] if fields[2] is not None else offset
        pos += 4 + length
    return size, csize, offset


def read_zip(inp: Input, *, max_entries: int) -> ZipIndex:
    """Index the archive in `inp`; `FormatError` if its directory cannot be read."""
    eocd = find_eocd(inp)
    if eocd is None:
        raise FormatError("no end-of-central-directory record")
    rec = inp.read_range(eocd, 22)
    _, _disk, _cd_disk, _, count, cd_size, cd_offset, _ = struct.unpack("<4sHHHHIIH", rec)
    eocd_for_size = eocd
    loc = inp.read_range(eocd - 20, 20) if eocd >= 20 else b""
    if len(loc) == 20 and loc[:4] == _EOCD64_LOC:
        # Zip64: the real counts live in the zip64 end record, which sits just
        # before its locator (APPNOTE 4.3.14-4.3.15).
        eocd_for_size = eocd - 20 - 56
        rec64 = inp.read_range(eocd_for_size, 56) if eocd_for_size >= 0 else b""
        if len(rec64) < 56 or rec64[:4] != _EOCD64:
            raise FormatError(f"zip64 end record expected at byte {eocd_for_size}", offset=eocd_for_size)
        count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec64, 32)
    if count > max_entries:
        raise FormatError(f"archive lists {count} members, more than the limit of {max_entries}")
    # Data may precede the archive (self-extractors, pickle+zip polyglots): like
    # zipfile, place the directory just before the end record.
    start = eocd_for_size - cd_size - cd_offset
    if start < 0:
        raise FormatError("central directory offset points before the start of the file", offset=eocd)
    cd = inp.read_range(start + cd_offset, cd_size)
    if len(cd) < cd_size:
        raise FormatError("central directory is truncated", offset=start + cd_offset)
    anomalies: list[str] = []
    if start > 0:
        anomalies.append(f"{start} byte(s) of other data precede the archive")
    entries: list[ZipEntry] = []
    pos = 0
    with inp.open() as f:
        for _ in range(count):
            if cd[pos : pos + 4] != _CENTRAL or pos + 46 > len(cd):
                raise FormatError(
                    f"central directory entry {len(entries)} is damaged",
                    offset=start + cd_offset + pos,
                )
            fields = struct.unpack_from("<HHHHHHIIIHHHHHII", cd, pos + 4)
            flags, method, crc, csize, usize, nlen, elen, clen = (
                fields[2],
                fields[3],
                *fields[6:12],
            )
            eattr, loff = fields[14], fields[15]
            name_raw = cd[pos + 46 : pos + 46 + nlen]
            extra = cd[pos + 46 + nlen : pos + 46 + nlen + elen]
            pos += 46 + nlen + elen + clen
            name = name_raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
            usize, csize, loff = _zip64_extra(extra, usize, csize, loff)
            if start + loff + 30 > inp.size:
                raise FormatError(f"{name}: local header offset {loff} lies past the end of the file")
            f.seek(start + loff)
            local = f.read(30)
            if len(local) < 30 or local[:4] != _LOCAL:
                raise FormatError(f"{name}: local header missing at byte {start + loff}", offset=start + loff)
            lnlen, lelen = struct.unpack_from("<HH", local, 26)
            local_name = f.read(lnlen).decode("utf-8", errors="replace")
            if local_name != name:
                anomalies.append(f"{name}: local header names it {local_name!r}")
            data_offset = start + loff + 30 + lnlen + lelen
            if data_offset + csize > inp.size:
                raise FormatError(f"{name}: member data runs past the end of the file", offset=data_offset)
            entries.append(
                ZipEntry(
                    name=name,
                    method=method,
                    flags=flags,
                    compressed_size=csize,
                    size=usize,
                    crc=crc,
                    data_offset=data_offset,
                    local_name=local_name,
                    is_symlink=(eattr >> 16) & 0o170000 == _S_IFLNK,
                )
            )
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        anomalies.append("several members share a name; loaders disagree on which one they read")
    return ZipIndex(tuple(entries), start, tuple(anomalies))


def inflate_chunks(inp: Input, entry: ZipEntry, *, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The decompressed bytes of a deflated, bzip2 or LZMA member, in chunks."""
    import bz2
    import lzma

    deflate = entry.method == 8
    with inp.open() as f:
        f.seek(entry.data_offset)
        remaining = entry.compressed_size
        if deflate:
            decomp: Any = zlib.decompressobj(-15)
        elif entry.method == 12:
            decomp = bz2.BZ2Decompressor()
        elif entry.method == 14:
            # APPNOTE 5.8.8: version (2 bytes), properties size (2), LZMA1 properties.
            head = f.read(4)
            if len(head) < 4:
                raise FormatError(f"{entry.name}: LZMA header is truncated")
            (psize,) = struct.unpack_from("<H", head, 2)
            props = f.read(psize)
            remaining -= 4 + psize
            try:
                filters = [lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)]  # type: ignore[attr-defined]
                decomp = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
            except (lzma.LZMAError, ValueError) as exc:
                raise FormatError(f"{entry.name}: bad LZMA properties ({exc})") from exc
        else:
            raise FormatError(f"{entry.name}: unsupported compression method {entry.method}")
        while remaining > 0:
            data = f.read(min(chunk, remaining))
            if not data:
                raise FormatError(f"{entry.name}: compressed data is truncated")
            remaining -= len(data)
            try:
                out = decomp.decompress(data)
            except (zlib.error, OSError, ValueError, EOFError, lzma.LZMAError) as exc:
                raise FormatError(f"{entry.name}: corrupt compressed data ({exc})") from exc
            if out:
                yield out
        if deflate:
            tail = decomp.flush()
            if tail:
                yield tail
