"""safetensors: an 8-byte header length, a JSON header, then tensor bytes.

Spec: https://github.com/huggingface/safetensors (README, "Format"). The format
cannot run code, but a header that lies (offsets outside the file, overlaps,
sizes that do not match the dtype and shape) crashes or misleads loaders.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from typing import TYPE_CHECKING, Any

from pipewarden.scan._formats._interface import FormatError, FormatScanner

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

_DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "C64": 64,
    "C128": 128,
}


def _looks(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 2 <= n <= size - 8


class SafetensorsScanner(FormatScanner):
    name = "safetensors"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return _looks(head, inp.size)

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        ctx.formats.add("safetensors")
        (n,) = struct.unpack("<Q", inp.head(8))
        problems: list[str] = []

        def bad(text: str) -> None:
            problems.append(text)

        if n > ctx.limits.max_header_bytes:
            raise FormatError(f"safetensors header of {n} bytes is over the limit", offset=0)
        raw = inp.read_range(8, n)
        try:
            header: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"safetensors header is not JSON: {exc}", offset=8) from None
        if not isinstance(header, dict):
            raise FormatError("safetensors header is not a JSON object", offset=8)
        data_len = inp.size - 8 - n
        spans: list[tuple[int, int, str]] = []
        for name, info in header.items():
            if name == "__metadata__":
                if not isinstance(info, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in info.items()
                ):
                    bad("__metadata__ must map strings to strings")
                continue
            if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
                bad(f"tensor {name!r}: entry must have exactly dtype, shape and data_offsets")
                continue
            dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
            if dtype not in _DTYPE_BITS:
                bad(f"tensor {name!r}: unknown dtype {dtype!r}")
                continue
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                bad(f"tensor {name!r}: shape {shape!r} is not a list of sizes")
                continue
            if (
                not isinstance(offsets, list)
                or len(offsets) != 2
                or not all(isinstance(o, int) and o >= 0 for o in offsets)
                or offsets[0] > offsets[1]
            ):
                bad(f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end]")
                continue
            begin, end = offsets
            if end > data_len:
                bad(f"tensor {name!r}: data ends at {end}, past the {data_len} bytes of data")
            expected_bits = math.prod(shape) * _DTYPE_BITS[dtype]
            expected = (expected_bits + 7) // 8
            if expected != end - begin:
                bad(f"tensor {name!r}: {end - begin} bytes for {dtype}{shape} (expected {expected})")
            spans.append((begin, end, name))
        spans.sort()
        for (_b1, e1, n1), (b2, _e2, n2) in itertools.pairwise(spans):
            if b2 < e1:
                bad(f"tensors {n1!r} and {n2!r} overlap")
        covered = sum(e - b for b, e, _ in spans)
        if not problems and covered != data_len:
            bad(f"tensors cover {covered} of the {data_len} data bytes: the rest is hidden data")
        for text in problems[:20]:
            ctx.add("PW-SCAN-307", member=member, offset=8, message=text, evidence={"header_bytes": n})
        if len(problems) > 20:
            ctx.add(
                "PW-SCAN-307",
                member=member,
                offset=8,
                message=f"{len(problems) - 20} more header problems",
            )
