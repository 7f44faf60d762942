"""TensorFlow SavedModel (saved_model.pb) and Keras metadata, read without TensorFlow.

Schema: tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
core/framework/graph.proto, node_def.proto, function.proto, op_def.proto;
keras_metadata.pb is tensorflow/python/keras/protobuf/saved_metadata.proto.
Every op in the graph and in its function library is checked against an
allowlist of computational ops; ops that read or write files or run Python
are flagged high (the technique modelscan's TensorFlow checks look for).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING

from pipewarden.scan._formats._interface import FormatError, FormatScanner
from pipewarden.scan._formats._protobuf import Schema, parse_message
from pipewarden.scan._pickle._source import Source
from pipewarden.scan._policy import ALLOWLIST_DIR

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

# Ops that reach the file system, run Python, or map files into memory.
DANGEROUS_TF_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "DeleteFile",
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "ImmutableConst",
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "LMDBReader",
        "ReaderReadV2",
        "ReaderRead",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "TextLineDataset",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "SaveDataset",
        "SaveDatasetV2",
        "LoadDataset",
        "ExperimentalLMDBDataset",
        "CSVDataset",
        "CSVDatasetV2",
        "ExperimentalCSVDataset",
        "SqlDataset",
        "ExperimentalSqlDataset",
        "PrintV2",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "LoadAndRemapMatrix",
        "DecodeProtoV2",
        "WriteSummary",
        "WriteRawProtoSummary",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "Save",
        "SaveSlices",
        "Restore",
        "RestoreSlice",
    }
)

_OPDEF: Schema = {1: "str"}
_NODE: Schema = {1: "str", 2: "str"}
_FUNCTION: Schema = {1: _OPDEF, 3: _NODE}
_LIBRARY: Schema = {1: _FUNCTION}
_GRAPHDEF: Schema = {1: _NODE, 2: _LIBRARY}
_META: Schema = {2: _GRAPHDEF}
_SAVED_MODEL: Schema = {1: "int", 2: _META}
_KERAS_OBJECT: Schema = {3: "str", 4: "str", 5: "str"}
_KERAS_META: Schema = {1: _KERAS_OBJECT}


@cache
def safe_tf_ops() -> frozenset[str]:
    text = (ALLOWLIST_DIR / "tensorflow_ops.list").read_text("utf-8")
    return frozenset(
        line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def looks_like_saved_model(head: bytes) -> bool:
    # SavedModel: saved_model_schema_version (field 1 = 1), then meta_graphs (field 2).
    return head[:3] == b"\x08\x01\x12"


class SavedModelScanner(FormatScanner):
    name = "tf-savedmodel"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return looks_like_saved_model(head)

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        with inp.open() as f:
            model = parse_message(Source(f, size=inp.size), inp.size, _SAVED_MODEL)
        if not model.get(2):
            raise FormatError("SavedModel has no meta graph")
        ctx.formats.add("tf-savedmodel")
        ops: dict[str, str] = {}
        for meta in model[2]:
            for graph in meta.get(2, []):
                for node in graph.get(1, []):
                    ops.setdefault((node.get(2) or [""])[0], (node.get(1) or ["?"])[0])
                for library in graph.get(2, []):
                    for fn in library.get(1, []):
                        fname = ((fn.get(1) or [{}])[0].get(1) or ["?"])[0]
                        for node in fn.get(3, []):
                            ops.setdefault((node.get(2) or [""])[0], f"{fname}/{(node.get(1) or ['?'])[0]}")
        allowed = safe_tf_ops()
        for op, where in sorted(ops.items()):
            if op in DANGEROUS_TF_OPS:
                ctx.add(
                    "PW-SCAN-303",
                    member=member,
                    message=f"op {op} (node {where}) reads or writes files or runs Python when the graph "
                    "runs",
                    evidence={"op": op, "node": where},
                )
            elif op not in allowed:
                ctx.add(
                    "PW-SCAN-304",
                    member=member,
                    message=f"op {op} (node {where}) is not on the allowlist of computational ops",
                    evidence={"op": op, "node": where},
                )


def looks_like_keras_metadata(head: bytes) -> bool:
    # SavedMetadata: repeated SavedObject nodes (field 1), whose metadata is Keras JSON.
    return head[:1] == b"\x0a" and b'"class_name"' in head


def scan_keras_metadata(inp: Input, ctx: ScanContext, member: str | None) -> None:
    """keras_metadata.pb beside a SavedModel: JSON layer configs, checked like any Keras config."""
    from pipewarden.scan._formats._keras import check_keras_config

    with inp.open() as f:
        meta = parse_message(Source(f, size=inp.size), inp.size, _KERAS_META)
    for obj in meta.get(1, []):
        text = (obj.get(5) or [""])[0]
        if not text:
            continue
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            ctx.add("PW-SCAN-312", member=member, message=f"layer metadata is not JSON: {exc}")
            continue
        check_keras_config(config, ctx, member, path=(obj.get(3) or ["root"])[0])


class KerasMetadataScanner(FormatScanner):
    """keras_metadata.pb (TF-Keras SavedModel): SavedMetadata with JSON layer configs."""

    name = "keras-metadata"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return looks_like_keras_metadata(inp.head(4096))

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        ctx.formats.add("keras-metadata")
        scan_keras_metadata(inp, ctx, member)
