"""Raw pickle streams (protocols 0-5), several in a row, and what follows them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipewarden.scan._formats._interface import FormatScanner
from pipewarden.scan._pickle._emulator import OPCODE_BYTES, PickleResult, emulate
from pipewarden.scan._pickle._source import Source

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

__all__ = ["PickleScanner", "looks_like_pickle", "scan_pickle_stream"]

# Opcodes a pickle without a PROTO opcode can start with: anything that pushes
# a value or a MARK, or names a global. pickle.load accepts any of them first,
# whatever protocol introduced them (protocol 1 writes BININT2 'M' first for
# 256, say; a hand-made stream may open with FRAME or SHORT_BINUNICODE).
_P0_FIRST = (
    frozenset(b"(NIJKLMFGSTUVXBCcdl]})iPghj")
    | frozenset((0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x95, 0x96))
) & OPCODE_BYTES
# The first pickle of a legacy torch.save file: protocol 2, LONG1 of 10 bytes,
# torch.serialization.MAGIC_NUMBER = 0x1950a86a20f9469cfc6c.
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def looks_like_pickle(head: bytes, inp: Input) -> bool:
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return True
    if not head or head[0] not in _P0_FIRST:
        return False
    # Protocol 0/1 has no magic: emulate a bounded prefix and accept it if it
    # stops cleanly or names a global that the real unpickler could import.
    # A file expected to be a model (by its name, or named directly) that is
    # not accepted here is still a finding: an unknown format.
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._limits import ScanLimits
    from pipewarden.scan._policy import ScanPolicy

    probe = ScanContext(
        path="<probe>",
        policy=ScanPolicy.default(),
        limits=ScanLimits(max_opcodes=1 << 20, max_line_bytes=4096, max_seconds=5.0),
    )
    with inp.open() as f:
        result = emulate(Source(f, size=inp.size), probe, member=None)
    return result.stopped or result.named_importable_global


def scan_pickle_stream(
    inp: Input,
    ctx: ScanContext,
    member: str | None,
    *,
    torch_ids: bool = False,
    joblib_arrays: bool = True,
    max_pickles: int | None = None,
) -> tuple[list[PickleResult], int]:
    """Emulate every pickle in `inp`, one after the other, as repeated `pickle.load` calls would.

    Returns the results and the offset where pickle data ends. A stream that
    is malformed is reported; data after the last pickle is left to the caller.
    """
    limit = max_pickles or ctx.limits.max_pickles_per_stream
    results: list[PickleResult] = []
    with inp.open() as f:
        src = Source(f, size=inp.size)
        while len(results) < limit:
            start = src.tell()
            if src.at_end():
                break
            if results and src.peek(1)[0] not in OPCODE_BYTES:
                break
            result = emulate(src, ctx, member=member, torch_ids=torch_ids, joblib_arrays=joblib_arrays)
            if results and not result.looked_like_pickle and result.opcodes <= 2:
                # The bytes after the last pickle merely start with an opcode byte.
                return results, start
            results.append(result)
            if not result.stopped:
                ctx.add(
                    "PW-SCAN-109",
                    member=member,
                    offset=result.error_offset,
                    message=f"{result.error}; a loader runs everything before this point, "
                    "so only what was reached is judged",
                    evidence={"pickle_index": len(results) - 1, "opcodes": result.opcodes},
                )
                return results, inp.size
        else:
            if max_pickles is None and not src.at_end():
                ctx.add(
                    "PW-SCAN-203",
                    member=member,
                    offset=src.tell(),
                    message=f"more than {limit} pickles in one stream; the rest was not checked",
                    evidence={"limit": "max_pickles_per_stream"},
                )
                return results, inp.size
        return results, src.tell()


class PickleScanner(FormatScanner):
    name = "pickle"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return looks_like_pickle(head, inp)

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        torch_legacy = inp.head(len(TORCH_LEGACY_MAGIC)) == TORCH_LEGACY_MAGIC
        if torch_legacy:
            from pipewarden.scan._formats._torch import scan_torch_legacy

            ctx.formats.add("pytorch-legacy")
            scan_torch_legacy(inp, ctx, member)
            return
        ctx.formats.add("pickle")
        results, end = scan_pickle_stream(inp, ctx, member)
        if results and results[-1].stopped and end < inp.size:
            trailing = inp.size - end
            if not engine.is_zip_tail(inp):
                ctx.add(
                    "PW-SCAN-110",
                    member=member,
                    offset=end,
                    message=f"{trailing} byte(s) after the last pickle are not a pickle; data hidden "
                    "behind a pickle is how pickle polyglots are made",
                    evidence={"trailing_bytes": trailing, "head": inp.read_range(end, 16).hex()},
                )
