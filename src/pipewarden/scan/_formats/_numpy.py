"""numpy .npy files (an object array is a pickle after the header); .npz is a zip of them.

Format: numpy/lib/format.py (NEP 1): magic ``\\x93NUMPY``, version, header
length, a Python-literal dict with descr, fortran_order and shape.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

from pipewarden.scan._formats._interface import FormatError, FormatScanner
from pipewarden.scan._formats._pickle import scan_pickle_stream
from pipewarden.scan._input import WindowInput

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

_MAGIC = b"\x93NUMPY"


def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(isinstance(f, tuple | list) and len(f) >= 2 and _has_object(f[1]) for f in descr)
    return True  # anything else: cannot tell, treat as objects (fail closed)


def _itemsize(descr: Any) -> int | None:
    if isinstance(descr, str):
        code = descr.lstrip("<>|=")
        kind, digits = code[:1], code[1:]
        if kind == "U" and digits.isdigit():
            return 4 * int(digits)
        if digits.isdigit():
            return int(digits)
        if kind in ("b", "?"):
            return 1
        return None
    if isinstance(descr, list):
        total = 0
        for field in descr:
            if not isinstance(field, tuple | list) or len(field) < 2:
                return None
            size = _itemsize(field[1])
            if size is None:
                return None
            if len(field) >= 3 and isinstance(field[2], tuple):
                size *= math.prod(field[2])
            total += size
        return total
    return None


class NumpyScanner(FormatScanner):
    name = "npy"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return head[:6] == _MAGIC

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        ctx.formats.add("npy")
        head = inp.head(12)
        if len(head) < 10:
            raise FormatError("npy header is truncated", offset=len(head))
        major = head[6]
        if major == 1:
            (hlen,) = struct.unpack("<H", head[8:10])
            start = 10
        elif major in (2, 3):
            if len(head) < 12:
                raise FormatError("npy header is truncated", offset=len(head))
            (hlen,) = struct.unpack("<I", head[8:12])
            start = 12
        else:
            raise FormatError(f"unknown npy format version {major}", offset=6)
        if hlen > ctx.limits.max_header_bytes or start + hlen > inp.size:
            raise FormatError(f"npy header length {hlen} runs past the file", offset=8)
        text = inp.read_range(start, hlen).decode("utf-8" if major == 3 else "latin-1", errors="replace")
        import ast  # literal_eval only: never evaluates code

        try:
            header = ast.literal_eval(text)  # literals only: never evaluates code
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise FormatError(f"npy header is not a Python literal: {exc}", offset=start) from None
        if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
            raise FormatError("npy header lacks descr, fortran_order or shape", offset=start)
        shape = header["shape"]
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise FormatError(f"npy shape {shape!r} is not a tuple of sizes", offset=start)
        data_start = start + hlen
        if _has_object(header["descr"]):
            ctx.add(
                "PW-SCAN-311",
                member=member,
                offset=data_start,
                message="array of Python objects: its data is a pickle, which np.load runs only with "
                "allow_pickle=True; the pickle is scanned below",
                evidence={"descr": repr(header["descr"])[:200]},
            )
            body = WindowInput(inp, data_start, inp.size - data_start)
            scan_pickle_stream(body, ctx, member, max_pickles=1)
            return
        size = _itemsize(header["descr"])
        if size is None:
            raise FormatError(f"npy dtype {header['descr']!r} is not understood", offset=start)
        expected = math.prod(shape) * size
        if inp.size - data_start < expected:
            raise FormatError(
                f"npy data is truncated: {inp.size - data_start} of {expected} bytes",
                offset=data_start,
            )
