"""GGUF (llama.cpp): header and metadata parsed within limits; chat templates checked.

Spec: ggml/docs/gguf.md. A chat template is Jinja run by the inference server;
a template that walks to Python internals (``__class__``, ``__globals__``,
``__subclasses__``...) escapes the sandbox-less environments some servers use
(CVE-2024-34359, llama-cpp-python). Templates are parsed with Jinja's parser
and never rendered.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from pipewarden.scan._formats._interface import FormatError, FormatScanner
from pipewarden.scan._formats._jinja import check_template
from pipewarden.scan._pickle._source import EndOfData, Source

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_KV = 1 << 20
_MAX_TENSORS = 1 << 24


class _Reader:
    def __init__(self, src: Source, ctx: ScanContext) -> None:
        self.src = src
        self.ctx = ctx
        self.budget = ctx.limits.max_header_bytes

    def take(self, n: int) -> bytes:
        self.budget -= n
        if self.budget < 0:
            raise FormatError("GGUF metadata is larger than --max-header-bytes", offset=self.src.tell())
        return self.src.read(n)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        return self.take(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, *, keep: bool) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype = self.scalar("<I")
            count = self.scalar("<Q")
            if etype in _SCALARS:
                size = struct.calcsize(_SCALARS[etype]) * count
                self.take(size) if size <= 1 << 16 else self._skip(size)
                return None
            out = []
            for i in range(count):
                if i & 0xFFFF == 0:
                    self.ctx.check_time()
                item = self.value(etype, keep=False)
                if keep and i < 16:
                    out.append(item)
            return out
        raise FormatError(f"unknown GGUF value type {vtype}", offset=self.src.tell())

    def _skip(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise FormatError("GGUF metadata is larger than --max-header-bytes", offset=self.src.tell())
        self.src.skip(n)


class GgufScanner(FormatScanner):
    name = "gguf"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return head[:4] == b"GGUF"

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        ctx.formats.add("gguf")
        with inp.open() as f:
            r = _Reader(Source(f, size=inp.size), ctx)
            try:
                r.take(4)
                version = r.scalar("<I")
                if version not in (1, 2, 3):
                    raise FormatError(f"unsupported GGUF version {version}", offset=4)
                width = "<I" if version == 1 else "<Q"
                tensors, kv_count = r.scalar(width), r.scalar(width)
                if kv_count > _MAX_KV or tensors > _MAX_TENSORS:
                    raise FormatError(f"GGUF header claims {kv_count} keys and {tensors} tensors", offset=8)
                for _ in range(kv_count):
                    at = r.src.tell()
                    key = r.string()
                    vtype = r.scalar("<I")
                    value = r.value(vtype, keep=True)
                    if key.startswith("tokenizer.chat_template"):
                        templates = value if isinstance(value, list) else [value]
                        for tpl in templates:
                            if isinstance(tpl, str):
                                check_template(tpl, ctx, member=member, offset=at, key=key)
            except EndOfData as exc:
                raise FormatError(f"GGUF metadata is truncated: {exc}", offset=exc.offset) from None
