"""The unpickler's memo, stored compactly.

A pickle of millions of small objects memoizes millions of short strings.
Keeping each as a Python `str` costs ~55 bytes apiece; here strings live in
one `bytearray` heap and the memo is an `array` of 64-bit codes, so a
2-million-object pickle needs tens of megabytes instead of hundreds.

A code is either ``offset << 17 | length << 1`` (a UTF-8 string of under
64 KiB in the heap) or ``index << 1 | 1`` (an object in a side list).
"""

from __future__ import annotations

from array import array
from typing import Any

from pipewarden.scan._pickle._values import MEMO_BOX, Box

__all__ = ["Memo"]

_MAX_HEAP_STR = 0xFFFF


def _worth_keeping(value: tuple[Any, ...]) -> bool:
    if len(value) <= 16 and all(type(item) is int for item in value):
        return True
    return any(not isinstance(item, str | int | float | bytes | bool | None | Box) for item in value)


class Memo:
    __slots__ = ("box_code", "entries", "extra", "heap", "objs")

    def __init__(self) -> None:
        self.entries = array("Q")
        self.heap = bytearray()
        self.objs: list[Any] = list(MEMO_BOX.values())
        self.box_code = {kind: (i << 1) | 1 for i, kind in enumerate(MEMO_BOX)}
        self.extra: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.entries) + len(self.extra)

    def encode(self, value: Any) -> int:
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8", "surrogatepass")
            if len(data) <= _MAX_HEAP_STR:
                code = (len(self.heap) << 17) | (len(data) << 1)
                self.heap += data
                return code
        elif kind is Box:
            # Decisions never depend on what a memoized container holds (every
            # global and call was judged when made): one stand-in per kind.
            return self.box_code[value.kind]
        elif kind is tuple and not _worth_keeping(value):
            # Likewise for tuples of plain data, except those that can size an
            # array (all ints) or name a callable: a stand-in there only makes
            # the emulator fail closed where it could have decided.
            return self.box_code["tuple"]
        self.objs.append(value)
        return ((len(self.objs) - 1) << 1) | 1

    def decode(self, code: int) -> Any:
        if code & 1:
            return self.objs[code >> 1]
        start = code >> 17
        return self.heap[start : start + ((code >> 1) & _MAX_HEAP_STR)].decode("utf-8", "surrogatepass")

    def put(self, idx: int, value: Any) -> None:
        n = len(self.entries)
        if idx == n:
            self.entries.append(self.encode(value))
        elif idx < n:
            self.entries[idx] = self.encode(value)
        else:
            self.extra[idx] = value

    def get(self, idx: int) -> Any:
        """The value at `idx`; KeyError if there is none."""
        if idx < len(self.entries):
            return self.decode(self.entries[idx])
        return self.extra[idx]
