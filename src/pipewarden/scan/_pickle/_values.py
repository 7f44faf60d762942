"""Symbolic values the emulator pushes instead of real objects.

The emulator never builds the objects a pickle describes. Plain data (ints,
short strings, small tuples) is kept as Python values, because names and
shapes are computed from it; everything else is a small stand-in that records
where it came from.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Blob",
    "Box",
    "GlobalRef",
    "Made",
    "Opaque",
    "PersRef",
    "describe",
    "is_symbolic_text",
]


class GlobalRef:
    """An object `find_class` would return: a class, function or other module attribute."""

    __slots__ = ("module", "name", "offset", "safe")

    def __init__(self, module: str, name: str, *, safe: bool, offset: int) -> None:
        self.module = module
        self.name = name
        self.safe = safe
        self.offset = offset

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


class Made:
    """The result of calling something: REDUCE, NEWOBJ(_EX), OBJ or INST."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: Any, args: Any) -> None:
        self.func = func
        self.args = args
        self.state: Any = None

    def made_by(self, qualified: str) -> bool:
        """True if this value came from calling the global `qualified` (directly
        or through ``copyreg._reconstructor`` / ``copyreg.__newobj__``)."""
        func = self.func
        if isinstance(func, GlobalRef):
            if func.qualified == qualified:
                return True
            if func.qualified in ("copyreg._reconstructor", "copyreg.__newobj__"):
                args = self.args
                if isinstance(args, tuple) and args and isinstance(args[0], GlobalRef):
                    return bool(args[0].qualified == qualified)
        return False


class PersRef:
    """What a persistent id resolves to (torch storages, for example)."""

    __slots__ = ("pid",)

    def __init__(self, pid: Any) -> None:
        self.pid = pid


class Box:
    """A list, dict, set or long tuple. Keeps a few items for evidence and state."""

    __slots__ = ("items", "kind", "size")

    KEEP = 32

    def __init__(self, kind: str, items: Any = None) -> None:
        self.kind = kind
        self.items: Any = items if items is not None else ({} if kind == "dict" else [])
        self.size = len(self.items)

    def add(self, item: Any) -> None:
        self.size += 1
        if len(self.items) < self.KEEP:
            self.items.append(item)

    def set(self, key: Any, value: Any) -> None:
        self.size += 1
        if len(self.items) < self.KEEP and isinstance(key, str | int | float | bool | None):
            self.items[key] = value


class Blob:
    """A bytes value too large to keep: its length and first bytes."""

    __slots__ = ("head", "length")

    def __init__(self, length: int, head: bytes) -> None:
        self.length = length
        self.head = head


class Opaque:
    """A value the emulator does not track (out-of-band buffers, unresolvable extensions)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


# Memo stand-ins for containers: decisions never depend on what a memoized
# container holds (every global and call was judged when it was made), so the
# memo keeps one shared stand-in per kind instead of millions of objects.
MEMO_BOX = {kind: Box(kind) for kind in ("list", "dict", "set", "tuple", "frozenset")}


def is_symbolic_text(value: Any) -> bool:
    """True if `value` is text the emulator could not know statically."""
    return isinstance(value, Made | PersRef | Opaque | GlobalRef)


def describe(value: Any, depth: int = 0) -> str:
    """A short, safe description of a value for evidence (never the whole value)."""
    if depth > 3:
        return "..."
    if isinstance(value, str):
        return repr(value if len(value) <= 120 else value[:117] + "...")
    if isinstance(value, bytes):
        return repr(value if len(value) <= 48 else value[:45] + b"...")
    if isinstance(value, GlobalRef):
        return value.qualified
    if isinstance(value, Made):
        return f"<result of {describe(value.func, depth + 1)}(...)>"
    if isinstance(value, PersRef):
        return f"<persistent id {describe(value.pid, depth + 1)}>"
    if isinstance(value, Blob):
        return f"<{value.length} bytes>"
    if isinstance(value, Opaque):
        return f"<{value.what}>"
    if isinstance(value, Box):
        if value.kind == "dict":
            inner = ", ".join(
                f"{describe(k, depth + 1)}: {describe(v, depth + 1)}"
                for k, v in list(value.items.items())[:6]
            )
            return "{" + inner + (", ..." if value.size > 6 else "") + "}"
        inner = ", ".join(describe(v, depth + 1) for v in value.items[:6])
        return f"{value.kind}[{inner}{', ...' if value.size > 6 else ''}]"
    if isinstance(value, tuple):
        inner = ", ".join(describe(v, depth + 1) for v in value[:6])
        return "(" + inner + (", ..." if len(value) > 6 else ("," if len(value) == 1 else "")) + ")"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
