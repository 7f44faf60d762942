"""Zip archives: PyTorch checkpoints, TorchScript, .keras, .npz and plain zips (nested)."""

from __future__ import annotations

import posixpath
import zlib
from typing import TYPE_CHECKING

from pipewarden.findings import Severity
from pipewarden.scan._formats._interface import FormatError, FormatScanner, child
from pipewarden.scan._formats._zipread import (
    ZipEntry,
    ZipIndex,
    find_eocd,
    inflate_chunks,
    read_zip,
)
from pipewarden.scan._input import Input, WindowInput, spool

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine

__all__ = ["ZipScanner", "member_input"]

_CRC_CHECK_MAX = 64 << 20


def escapes_folder(name: str) -> bool:
    """True if extracting `name` would write outside the extraction folder (CWE-22)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return ".." in posixpath.normpath(norm).split("/")


def member_input(inp: Input, entry: ZipEntry, ctx: ScanContext, member: str) -> Input | None:
    """The bytes of one member, or None (with a finding) when they cannot be read safely."""
    if entry.encrypted:
        ctx.add(
            "PW-SCAN-208",
            member=member,
            message="member is encrypted; its content cannot be checked",
        )
        return None
    if entry.method == 0:
        view = WindowInput(inp, entry.data_offset, entry.compressed_size)
        if entry.compressed_size <= _CRC_CHECK_MAX and zlib.crc32(view.read_all()) != entry.crc:
            ctx.add(
                "PW-SCAN-205",
                member=member,
                message="stored CRC does not match the data: zipfile refuses this member, "
                "PyTorch's reader does not; scanned anyway",
                evidence={"crc": f"{entry.crc:08x}"},
            )
        return view
    ratio = ctx.limits.max_compression_ratio
    budget = entry.compressed_size * ratio + (1 << 20)

    def chunks() -> object:
        produced = 0
        crc = 0
        for chunk in inflate_chunks(inp, entry):
            produced += len(chunk)
            ctx.count_decompressed(len(chunk))
            if produced > budget:
                raise _Bomb(produced)
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if crc != entry.crc:
            ctx.add(
                "PW-SCAN-205",
                member=member,
                message="CRC does not match the data: zipfile refuses this member, PyTorch's "
                "reader does not; scanned anyway",
                evidence={"crc": f"{entry.crc:08x}", "actual": f"{crc:08x}"},
            )

    try:
        return spool(chunks())  # type: ignore[arg-type]
    except _Bomb as bomb:
        ctx.add(
            "PW-SCAN-206",
            member=member,
            message=f"member expands past {ratio}x its compressed size of {entry.compressed_size} bytes "
            f"({bomb.produced} bytes so far); not scanned further",
            evidence={"compressed": entry.compressed_size},
        )
        return None


class _Bomb(Exception):
    def __init__(self, produced: int) -> None:
        super().__init__(produced)
        self.produced = produced


def _archive_kind(index: ZipIndex) -> str:
    names = [e.name for e in index.entries]
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        if any(n.endswith("/constants.pkl") for n in names) or any("/code/" in n for n in names):
            return "torchscript"
        return "pytorch-zip"
    if {"config.json", "metadata.json"} <= set(names):
        return "keras-v3"
    if names and all(n.endswith(".npy") for n in names if not n.endswith("/")):
        return "npz"
    del tops
    return "zip"


class ZipScanner(FormatScanner):
    name = "zip"

    def sniff(self, head: bytes, inp: Input) -> bool:
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            return True
        # Data before an archive (self-extractors, pickle+zip polyglots): a zip only
        # if its directory really reads, not because the end-record bytes occur.
        if find_eocd(inp) is None:
            return False
        try:
            read_zip(inp, max_entries=1 << 20)
        except (FormatError, ValueError, OverflowError, OSError):
            return False
        return True

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        index = read_zip(inp, max_entries=ctx.limits.max_members)
        kind = _archive_kind(index)
        ctx.formats.add(kind)
        for note in index.anomalies:
            # Bytes before an archive are common (self-extractors, a zip held in a
            # pickle's bytes); both readings are scanned, so that alone is low.
            low = note.endswith("precede the archive")
            ctx.add(
                "PW-SCAN-205",
                member=member,
                message=note,
                evidence={"archive": kind},
                severity=Severity.LOW if low else None,
            )
        from pipewarden.scan._formats._torch import scan_torch_zip_member

        for entry in index.entries:
            ctx.check_time()
            ctx.count_member()
            where = child(member, entry.name)
            if escapes_folder(entry.name) or escapes_folder(entry.local_name):
                ctx.add(
                    "PW-SCAN-204",
                    member=where,
                    message="member name leaves the extraction folder (absolute path or '..')",
                    evidence={"name": entry.name, "local_name": entry.local_name},
                )
            if entry.is_symlink:
                ctx.add("PW-SCAN-210", member=where, message="member is a symbolic link")
                continue
            if entry.is_dir:
                continue
            if kind in ("pytorch-zip", "torchscript") and scan_torch_zip_member(
                inp, entry, ctx, where, engine, kind=kind
            ):
                continue
            try:
                data = member_input(inp, entry, ctx, where)
            except FormatError as exc:
                # One unreadable member fails closed by itself; the others are still read.
                ctx.add("PW-SCAN-202", member=where, message=f"zip member cannot be read: {exc}")
                continue
            if data is None:
                continue
            if kind == "keras-v3" and entry.name == "config.json":
                from pipewarden.scan._formats._keras import scan_keras_config_json

                scan_keras_config_json(data.read_all(), ctx, where, limit=ctx.limits.max_header_bytes)
                continue
            engine.scan_input(data, ctx, where, depth + 1, expected_model=False)
