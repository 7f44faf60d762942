"""PyTorch files: zip checkpoints, TorchScript archives, the legacy stream and tar formats.

References: torch/serialization.py (`_load`, `_legacy_load`) and
caffe2/serialize/inline_container.cc (PyTorchStreamReader).
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING, Any

from pipewarden.scan._formats._interface import FormatError
from pipewarden.scan._formats._pickle import scan_pickle_stream
from pipewarden.scan._pickle._emulator import emulate
from pipewarden.scan._pickle._source import EndOfData, Source
from pipewarden.scan._pickle._values import GlobalRef

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._formats._zipread import ZipEntry
    from pipewarden.scan._input import Input

__all__ = ["scan_torch_legacy", "scan_torch_tar", "scan_torch_zip_member"]

# Records torch reads as raw bytes, never as pickles.
_RAW_RECORD = re.compile(r"(^|/)(data/\d+|\.data/.*|byteorder|version|\.format_version|\.storage_alignment)$")
_TS_ALLOWED_NAMESPACES = frozenset({"aten", "prim", "quantized", "_quantized", "profiler", "_caffe2"})
_TS_FILE_OPS = frozenset({"from_file", "save", "load", "_load_for_lite_interpreter"})
_TS_PY_CALLS = frozenset({"open", "eval", "exec", "compile", "__import__", "getattr", "setattr", "globals"})

# Element sizes of the legacy storage classes (torch/storage.py, torch/_utils._element_size).
_STORAGE_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}


def scan_torch_zip_member(
    inp: Input, entry: ZipEntry, ctx: ScanContext, member: str, engine: Engine, *, kind: str
) -> bool:
    """Scan one member of a torch zip the way torch uses it; False to fall back to generic."""
    from pipewarden.scan._formats._zip import member_input

    if _RAW_RECORD.search(entry.name):
        return True  # tensor bytes and small text records: torch never unpickles them
    if entry.name.endswith(".pkl"):
        data = member_input(inp, entry, ctx, member)
        if data is not None:
            scan_pickle_stream(data, ctx, member, torch_ids=True, joblib_arrays=False, max_pickles=1)
        return True
    if kind == "torchscript" and "/code/" in entry.name and entry.name.endswith(".py"):
        data = member_input(inp, entry, ctx, member)
        if data is not None:
            scan_torchscript_code(data.read_all(), ctx, member)
        return True
    if kind == "torchscript" and entry.name.endswith(".debug_pkl"):
        data = member_input(inp, entry, ctx, member)
        if data is not None:
            scan_pickle_stream(data, ctx, member, torch_ids=True, joblib_arrays=False, max_pickles=1)
        return True
    return False


def scan_torchscript_code(source: bytes, ctx: ScanContext, member: str) -> None:
    """Flag TorchScript code that calls custom-op namespaces, file ops or Python builtins."""
    import ast  # imported here: only TorchScript archives carry code

    try:
        tree = ast.parse(source.decode("utf-8"), filename=member)
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        ctx.add("PW-SCAN-202", member=member, message=f"TorchScript code cannot be parsed: {exc}")
        return
    seen: set[str] = set()
    for node in ast.walk(tree):
        name = _dotted(node) if isinstance(node, ast.Attribute) else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _TS_PY_CALLS:
            name = node.func.id
        if not name or name in seen:
            continue
        parts = name.split(".")
        bad = None
        if "ops" in parts:
            i = parts.index("ops")
            if i + 1 < len(parts) and parts[i + 1] not in _TS_ALLOWED_NAMESPACES:
                bad = f"custom operator namespace {parts[i + 1]!r} (runs native code from a library)"
            elif i + 2 < len(parts) and parts[i + 2] in _TS_FILE_OPS:
                bad = f"operator {parts[i + 2]!r} reads or writes files"
        elif name in _TS_PY_CALLS:
            bad = f"call to {name}()"
        if bad:
            seen.add(name)
            ctx.add(
                "PW-SCAN-310",
                member=member,
                message=f"{name}: {bad}",
                evidence={"name": name, "line": getattr(node, "lineno", None)},
            )


def _dotted(node: Any) -> str | None:
    import ast

    parts: list[str] = []
    cur = node
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    if isinstance(cur, ast.Name):
        parts.append(cur.id)
        return ".".join(reversed(parts))
    return None


def scan_torch_legacy(inp: Input, ctx: ScanContext, member: str | None) -> None:
    """The legacy torch.save stream: magic, protocol, sys_info, object, storage keys, raw storages."""
    results, end = scan_pickle_stream(inp, ctx, member, torch_ids=True, joblib_arrays=False, max_pickles=5)
    if len(results) < 5 or not all(r.stopped for r in results):
        if all(r.stopped for r in results):
            raise FormatError(f"legacy PyTorch file holds {len(results)} of its 5 pickles", offset=end)
        return  # the malformed pickle was reported already
    magic, protocol = results[0].value, results[1].value
    if magic != 0x1950A86A20F9469CFC6C or protocol != 1001:
        raise FormatError(f"legacy PyTorch header is wrong (magic {magic!r}, protocol {protocol!r})")
    # Storage data follows as (8-byte element count, bytes) per key; anything
    # past it is not read by torch.load and hides nothing from it.
    del end


def scan_torch_tar(read_member: Any, names: set[str], ctx: ScanContext, member: str | None) -> bool:
    """The legacy tar layout (sys_info, pickle, storages, tensors); False if `names` is not it."""
    if not {"pickle", "storages", "tensors"} <= names:
        return False
    from pipewarden.scan._formats._interface import child

    ctx.formats.add("pytorch-tar")
    for name in ("sys_info", "pickle"):
        if name in names:
            data = read_member(name)
            scan_pickle_stream(
                data, ctx, child(member, name), torch_ids=True, joblib_arrays=False, max_pickles=1
            )
    _scan_tar_storages(read_member("storages"), ctx, child(member, "storages"))
    _scan_tar_tensors(read_member("tensors"), ctx, child(member, "tensors"))
    return True


def _one(src: Source, ctx: ScanContext, member: str) -> Any:
    result = emulate(src, ctx, member=member, torch_ids=True)
    if not result.stopped:
        raise FormatError(f"{member}: {result.error}", offset=result.error_offset)
    return result.value


def _scan_tar_storages(data: Input, ctx: ScanContext, member: str) -> None:
    with data.open() as f:
        src = Source(f, size=data.size)
        try:
            count = _one(src, ctx, member)
            if not isinstance(count, int) or count < 0:
                raise FormatError(f"{member}: storage count is {count!r}")
            for _ in range(count):
                ctx.check_time()
                args = _one(src, ctx, member)
                storage_type = args[2] if isinstance(args, tuple) and len(args) == 3 else None
                if not isinstance(storage_type, GlobalRef) or storage_type.name not in _STORAGE_SIZES:
                    raise FormatError(f"{member}: storage record {args!r} has no known storage type")
                (numel,) = struct.unpack("<q", src.read(8))
                src.skip(numel * _STORAGE_SIZES[storage_type.name])
            _one(src, ctx, member)  # storage views
        except EndOfData as exc:
            raise FormatError(f"{member}: truncated ({exc})", offset=exc.offset) from None


def _scan_tar_tensors(data: Input, ctx: ScanContext, member: str) -> None:
    with data.open() as f:
        src = Source(f, size=data.size)
        try:
            count = _one(src, ctx, member)
            if not isinstance(count, int) or count < 0:
                raise FormatError(f"{member}: tensor count is {count!r}")
            for _ in range(count):
                ctx.check_time()
                _one(src, ctx, member)
                (ndim,) = struct.unpack("<i", src.read(4))
                src.skip(4 + 16 * ndim + 8)
        except EndOfData as exc:
            raise FormatError(f"{member}: truncated ({exc})", offset=exc.offset) from None
