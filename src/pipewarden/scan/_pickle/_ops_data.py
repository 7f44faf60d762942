"""Opcode handlers for plain data: numbers, strings, bytes, containers, the stack and the memo.

Each mirrors the `load_*` method of the same name in CPython's `Lib/pickle.py`;
the common ones also have a fast path in `_fast`.
"""

from __future__ import annotations

import codecs
import struct
from typing import Any

from pipewarden.scan._context import LimitHit
from pipewarden.scan._pickle._state import _KEEP_STR, Machine, _Malformed
from pipewarden.scan._pickle._values import Box, Opaque

_MAX_BIGINT = 1 << 16  # bytes of LONG1/LONG4 payload we decode

_unpack_i = struct.Struct("<i").unpack
_unpack_I = struct.Struct("<I").unpack
_unpack_Q = struct.Struct("<Q").unpack
_unpack_d = struct.Struct(">d").unpack
_unpack_H = struct.Struct("<H").unpack


class DataOps(Machine):
    """Handlers that build values; none of them can reach code."""

    # -- numbers ---------------------------------------------------------
    def op_INT(self) -> None:
        data = self.line()[:-1]
        if data == b"00":
            self.stack.append(False)
        elif data == b"01":
            self.stack.append(True)
        else:
            try:
                self.stack.append(int(data, 0))
            except ValueError:
                raise _Malformed(f"INT argument {data[:40]!r} is not an integer", self.at) from None

    def op_BININT(self) -> None:
        self.stack.append(_unpack_i(self.src.read(4))[0])

    def op_BININT1(self) -> None:
        self.stack.append(self.src.read(1)[0])

    def op_BININT2(self) -> None:
        self.stack.append(_unpack_H(self.src.read(2))[0])

    def op_LONG(self) -> None:
        data = self.line()[:-1]
        if data.endswith(b"L"):
            data = data[:-1]
        try:
            self.stack.append(int(data, 0) if len(data) <= 4300 else Opaque("big integer"))
        except ValueError:
            raise _Malformed(f"LONG argument {data[:40]!r} is not an integer", self.at) from None

    def _long(self, n: int) -> None:
        if n < 0:
            raise _Malformed("LONG4 with a negative byte count", self.at)
        if n > _MAX_BIGINT:
            self.src.skip(n)
            self.stack.append(Opaque(f"{n}-byte integer"))
        else:
            self.stack.append(int.from_bytes(self.src.read(n), "little", signed=True))

    def op_LONG1(self) -> None:
        self._long(self.src.read(1)[0])

    def op_LONG4(self) -> None:
        self._long(_unpack_i(self.src.read(4))[0])

    def op_FLOAT(self) -> None:
        data = self.line()[:-1]
        try:
            self.stack.append(float(data))
        except ValueError:
            raise _Malformed(f"FLOAT argument {data[:40]!r} is not a number", self.at) from None

    def op_BINFLOAT(self) -> None:
        self.stack.append(_unpack_d(self.src.read(8))[0])

    def op_NONE(self) -> None:
        self.stack.append(None)

    def op_NEWTRUE(self) -> None:
        self.stack.append(True)

    def op_NEWFALSE(self) -> None:
        self.stack.append(False)

    # -- strings and bytes -----------------------------------------------
    def op_STRING(self) -> None:
        data = self.line()[:-1]
        if len(data) >= 2 and data[0] == data[-1] and data[:1] in (b'"', b"'"):
            data = data[1:-1]
        else:
            raise _Malformed("STRING argument is not quoted", self.at)
        try:
            value = codecs.escape_decode(data)[0]
        except ValueError as exc:
            raise _Malformed(f"STRING argument has a bad escape: {exc}", self.at) from None
        self.stack.append(value.decode("latin-1"))

    def op_BINSTRING(self) -> None:
        (n,) = _unpack_i(self.src.read(4))
        if n < 0:
            raise _Malformed("BINSTRING with a negative length", self.at)
        value = self.read_bytes(n) if n > _KEEP_STR else self.src.read(n)
        self.stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)

    def op_SHORT_BINSTRING(self) -> None:
        self.stack.append(self.src.read(self.src.read(1)[0]).decode("latin-1"))

    def op_UNICODE(self) -> None:
        data = self.line()[:-1]
        try:
            self.stack.append(data.decode("raw-unicode-escape"))
        except UnicodeDecodeError as exc:
            raise _Malformed(f"UNICODE argument: {exc.reason}", self.at) from None

    def op_BINUNICODE(self) -> None:
        self.stack.append(self.read_str(_unpack_I(self.src.read(4))[0]))

    def op_BINUNICODE8(self) -> None:
        self.stack.append(self.read_str(_unpack_Q(self.src.read(8))[0]))

    def op_SHORT_BINUNICODE(self) -> None:
        self.stack.append(self.read_str(self.src.read(1)[0]))

    def op_BINBYTES(self) -> None:
        self.stack.append(self.read_bytes(_unpack_I(self.src.read(4))[0]))

    def op_SHORT_BINBYTES(self) -> None:
        self.stack.append(self.read_bytes(self.src.read(1)[0]))

    def op_BINBYTES8(self) -> None:
        self.stack.append(self.read_bytes(_unpack_Q(self.src.read(8))[0]))

    def op_BYTEARRAY8(self) -> None:
        self.stack.append(self.read_bytes(_unpack_Q(self.src.read(8))[0]))

    def op_NEXT_BUFFER(self) -> None:
        self.stack.append(Opaque("out-of-band buffer"))

    def op_READONLY_BUFFER(self) -> None:
        self.top()

    # -- containers ------------------------------------------------------
    def op_EMPTY_TUPLE(self) -> None:
        self.stack.append(())

    def _tuple(self, items: list[Any]) -> Any:
        return tuple(items) if len(items) <= Box.KEEP else Box("tuple", items[: Box.KEEP])

    def op_TUPLE(self) -> None:
        value = self._tuple(self.pop_mark())  # pop_mark replaces self.stack: read it first
        self.stack.append(value)

    def op_TUPLE1(self) -> None:
        self.stack.append((self.pop(),))

    def op_TUPLE2(self) -> None:
        b = self.pop()
        a = self.pop()
        self.stack.append((a, b))

    def op_TUPLE3(self) -> None:
        c = self.pop()
        b = self.pop()
        a = self.pop()
        self.stack.append((a, b, c))

    def op_EMPTY_LIST(self) -> None:
        self.stack.append(Box("list"))

    def op_LIST(self) -> None:
        items = self.pop_mark()
        box = Box("list", items[: Box.KEEP])
        box.size = len(items)
        self.stack.append(box)

    def op_EMPTY_DICT(self) -> None:
        self.stack.append(Box("dict"))

    def _fill_dict(self, box: Box, items: list[Any]) -> None:
        for i in range(0, len(items) - 1, 2):
            box.set(items[i], items[i + 1])

    def op_DICT(self) -> None:
        items = self.pop_mark()
        box = Box("dict")
        self._fill_dict(box, items)
        self.stack.append(box)

    def op_EMPTY_SET(self) -> None:
        self.stack.append(Box("set"))

    def op_FROZENSET(self) -> None:
        items = self.pop_mark()
        box = Box("frozenset", items[: Box.KEEP])
        box.size = len(items)
        self.stack.append(box)

    def op_APPEND(self) -> None:
        value = self.pop()
        target = self.top()
        if isinstance(target, Box):
            self.need_kind(target, "APPEND", "list")
            target.add(value)
        else:
            self.mutate(target, "APPEND")

    def op_APPENDS(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, Box):
            self.need_kind(target, "APPENDS", "list")
            for item in items[: Box.KEEP]:
                target.add(item)
            target.size += max(0, len(items) - Box.KEEP)
        else:
            self.mutate(target, "APPENDS")

    def op_SETITEM(self) -> None:
        value = self.pop()
        key = self.pop()
        target = self.top()
        if isinstance(target, Box):
            self.need_kind(target, "SETITEM", "dict")
            target.set(key, value)
        else:
            self.mutate(target, "SETITEM")

    def op_SETITEMS(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, Box):
            self.need_kind(target, "SETITEMS", "dict")
            self._fill_dict(target, items)
        else:
            self.mutate(target, "SETITEMS")

    def op_ADDITEMS(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, Box):
            self.need_kind(target, "ADDITEMS", "set")
            for item in items[: Box.KEEP]:
                target.add(item)
        else:
            self.mutate(target, "ADDITEMS")

    # -- stack and memo --------------------------------------------------
    def op_MARK(self) -> None:
        if len(self.metastack) >= self.limits.max_depth:
            raise LimitHit("max_depth", f"more than {self.limits.max_depth} nested MARKs")
        self.metastack.append(self.stack)
        self.stack = []

    def op_POP(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def op_POP_MARK(self) -> None:
        self.pop_mark()

    def op_DUP(self) -> None:
        self.stack.append(self.top())

    def op_GET(self) -> None:
        data = self.line()[:-1]
        try:
            idx = int(data)
        except ValueError:
            raise _Malformed("GET argument is not an integer", self.at) from None
        self.stack.append(self.memo_get(idx))

    def op_BINGET(self) -> None:
        self.stack.append(self.memo_get(self.src.read(1)[0]))

    def op_LONG_BINGET(self) -> None:
        self.stack.append(self.memo_get(_unpack_I(self.src.read(4))[0]))

    def op_PUT(self) -> None:
        data = self.line()[:-1]
        try:
            idx = int(data)
        except ValueError:
            raise _Malformed("PUT argument is not an integer", self.at) from None
        self.memo_put(idx, self.top())

    def op_BINPUT(self) -> None:
        self.memo_put(self.src.read(1)[0], self.top())

    def op_LONG_BINPUT(self) -> None:
        self.memo_put(_unpack_I(self.src.read(4))[0], self.top())

    def op_MEMOIZE(self) -> None:
        self.memo_put(len(self.memo.entries), self.top())
