"""ONNX models: external-data paths and custom operator domains.

Schema: onnx/onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto,
AttributeProto, FunctionProto). An initializer with ``data_location =
EXTERNAL`` names a file that the runtime opens relative to the model: a path
that leaves the model's folder reads arbitrary files (CVE-2024-27318,
CVE-2024-5187 in onnx's own loader). A node in a non-standard domain needs a
custom-op library, which is native code the model's author chose.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from pipewarden.scan._formats._interface import FormatError, FormatScanner
from pipewarden.scan._formats._protobuf import Schema, parse_message
from pipewarden.scan._pickle._source import Source

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

_STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training", "ai.onnx.preview"}
)

_ENTRY: Schema = {1: "str", 2: "str"}
_TENSOR: Schema = {8: "str", 13: _ENTRY, 14: "int"}
_SPARSE: Schema = {1: _TENSOR, 2: _TENSOR}
_GRAPH: Schema = {}
_ATTR: Schema = {1: "str", 5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE}
_NODE: Schema = {3: "str", 4: "str", 5: _ATTR, 7: "str"}
_GRAPH.update({1: _NODE, 2: "str", 5: _TENSOR, 15: _SPARSE})
_OPSET: Schema = {1: "str", 2: "int"}
_FUNCTION: Schema = {1: "str", 7: _NODE, 9: _OPSET, 10: "str"}
_MODEL: Schema = {1: "int", 7: _GRAPH, 8: _OPSET, 25: _FUNCTION}


def looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint): 0x08 then 3..15 (IR
    # versions 1 and 2 predate ONNX 1.0). A SavedModel starts 0x08 0x01.
    return (
        len(head) >= 4
        and head[0] == 0x08
        and 3 <= head[1] <= 15
        and head[2] in (0x12, 0x1A, 0x22, 0x3A, 0x42)
    )


def _escapes(location: str) -> bool:
    norm = location.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or "://" in norm:
        return True
    return ".." in posixpath.normpath(norm).split("/")


class OnnxScanner(FormatScanner):
    name = "onnx"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return looks_like_onnx(head)

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        with inp.open() as f:
            model = parse_message(Source(f, size=inp.size), inp.size, _MODEL)
        if 7 not in model:
            raise FormatError("ONNX model has no graph")
        ctx.formats.add("onnx")
        domains: dict[str, str] = {}
        for opset in model.get(8, []):
            domain = (opset.get(1) or [""])[0]
            if domain not in _STANDARD_DOMAINS:
                domains.setdefault(domain, "opset_import")
        external: list[tuple[str, str]] = []

        def tensor(t: dict[int, list[Any]]) -> None:
            if (t.get(14) or [0])[0] == 1:
                name = (t.get(8) or ["?"])[0]
                external.extend(
                    (name, (entry.get(2) or [""])[0])
                    for entry in t.get(13, [])
                    if (entry.get(1) or [""])[0] == "location"
                )

        def graph(g: dict[int, list[Any]], where: str) -> None:
            ctx.check_time()
            for t in g.get(5, []):
                tensor(t)
            for s in g.get(15, []):
                for t in s.get(1, []) + s.get(2, []):
                    tensor(t)
            for node in g.get(1, []):
                domain = (node.get(7) or [""])[0]
                if domain not in _STANDARD_DOMAINS:
                    domains.setdefault(domain, f"{where} node {(node.get(4) or ['?'])[0]}")
                for attr in node.get(5, []):
                    for t in attr.get(5, []) + attr.get(10, []):
                        tensor(t)
                    for sub in attr.get(6, []) + attr.get(11, []):
                        graph(sub, where + "/" + (attr.get(1) or ["?"])[0])

        for g in model[7]:
            graph(g, "graph")
        for fn in model.get(25, []):
            for node in fn.get(7, []):
                domain = (node.get(7) or [""])[0]
                if domain not in _STANDARD_DOMAINS:
                    domains.setdefault(domain, f"function {(fn.get(1) or ['?'])[0]}")
        for name, location in external:
            if _escapes(location):
                ctx.add(
                    "PW-SCAN-305",
                    member=member,
                    message=f"initializer {name!r} reads external data from {location!r}, outside the "
                    "model's folder",
                    evidence={"tensor": name, "location": location},
                )
        for domain, where in sorted(domains.items()):
            ctx.add(
                "PW-SCAN-306",
                member=member,
                message=f"operator domain {domain!r} (first used by {where}) needs a custom-op library",
                evidence={"domain": domain},
            )
