"""A bounded, streaming reader of the protobuf wire format (no generated code, no dependency).

Only the fields a schema names are kept; everything else, including large
tensor payloads, is skipped without being read into memory. Wire format:
https://protobuf.dev/programming-guides/encoding/
"""

from __future__ import annotations

from typing import Any

from pipewarden.scan._formats._interface import FormatError
from pipewarden.scan._pickle._source import EndOfData, Source

__all__ = ["Schema", "parse_message"]

# A schema maps field numbers to "int", "str", "bytes" or a nested schema.
Schema = dict[int, Any]

_MAX_DEPTH = 64
_MAX_KEEP = 1 << 20  # longest str/bytes field kept


def _varint(src: Source) -> int:
    shift = 0
    result = 0
    while True:
        b = src.read_byte()
        if b < 0:
            raise FormatError("protobuf varint is truncated", offset=src.tell())
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise FormatError("protobuf varint is longer than 10 bytes", offset=src.tell())


def parse_message(src: Source, end: int, schema: Schema, *, depth: int = 0) -> dict[int, list[Any]]:
    """Read fields until byte `end`; returns {field: [values]} for the schema's fields."""
    if depth > _MAX_DEPTH:
        raise FormatError("protobuf messages nest deeper than 64 levels", offset=src.tell())
    out: dict[int, list[Any]] = {}
    try:
        while src.tell() < end:
            key = _varint(src)
            field, wire = key >> 3, key & 7
            if field == 0:
                raise FormatError("protobuf field number 0", offset=src.tell())
            kind = schema.get(field)
            if wire == 0:
                value: Any = _varint(src)
            elif wire == 1:
                value = int.from_bytes(src.read(8), "little")
            elif wire == 5:
                value = int.from_bytes(src.read(4), "little")
            elif wire == 2:
                length = _varint(src)
                stop = src.tell() + length
                if stop > end:
                    raise FormatError(f"protobuf field {field} runs past its message", offset=src.tell())
                if isinstance(kind, dict):
                    value = parse_message(src, stop, kind, depth=depth + 1)
                elif kind == "str" and length <= _MAX_KEEP:
                    value = src.read(length).decode("utf-8", errors="replace")
                elif kind == "bytes" and length <= _MAX_KEEP:
                    value = src.read(length)
                else:
                    src.skip(length)
                    continue
                if src.tell() != stop:
                    raise FormatError(f"protobuf field {field} has a bad length", offset=src.tell())
            else:
                raise FormatError(f"protobuf wire type {wire} is not supported", offset=src.tell())
            if kind is not None:
                out.setdefault(field, []).append(value)
    except EndOfData as exc:
        raise FormatError(f"protobuf data is truncated: {exc}", offset=exc.offset) from None
    if src.tell() != end:
        raise FormatError("protobuf message overruns its end", offset=src.tell())
    return out
