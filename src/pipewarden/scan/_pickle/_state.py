"""The emulator's state and the helpers every opcode handler uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipewarden.scan._context import LimitHit, ScanContext
from pipewarden.scan._pickle._memo import Memo
from pipewarden.scan._pickle._source import Source
from pipewarden.scan._pickle._values import Blob, Box
from pipewarden.scan._policy import Verdict

_KEEP_STR = 4096  # longer strings are read but kept as a prefix
_KEEP_BYTES = 64


class _Malformed(Exception):
    """The real unpickler would stop here with an error."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Stop(Exception):
    pass


_IDENT_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass
class _GlobalUse:
    verdict: Verdict
    reason: str
    offset: int
    count: int = 0
    calls: list[str] = field(default_factory=list)
    conditional_calls: int = 0  # calls of getattr/partial judged by _conditional
    resolved_calls: int = 0  # ... of which resolved statically to allowlisted targets


@dataclass
class PickleResult:
    """What one pickle stream turned out to be."""

    start: int
    end: int
    protocol: int
    opcodes: int
    stopped: bool
    error: str | None = None
    error_offset: int | None = None
    globals: dict[tuple[str, str], _GlobalUse] = field(default_factory=dict)
    persistent_ids: int = 0
    value: Any = None

    @property
    def looked_like_pickle(self) -> bool:
        """A stream that stopped cleanly, or that named at least one global."""
        return self.stopped or bool(self.globals)

    @property
    def named_importable_global(self) -> bool:
        """Whether some global it named is a dotted identifier path, which an unpickler could import.

        Text that happens to start with a protocol 0 opcode (a CSV whose header
        begins with 'c', say) names "globals" such as ``ity,pop`` that no
        import can resolve.
        """
        return any(_IDENT_PATH.match(m) and _IDENT_PATH.match(n) for m, n in self.globals)


class Machine:
    """Stack, metastack, memo and source of one pickle being emulated."""

    def __init__(
        self,
        src: Source,
        ctx: ScanContext,
        member: str | None,
        *,
        torch_ids: bool,
        joblib_arrays: bool,
    ) -> None:
        self.src = src
        self.ctx = ctx
        self.member = member
        self.limits = ctx.limits
        self.torch_ids = torch_ids
        self.joblib_arrays = joblib_arrays
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo = Memo()
        self.next_check = min(0x10000, self.limits.max_opcodes + 1)
        self.proto = 0
        self.frame_end: int | None = None
        self.frame_violation: str | None = None
        self.at = 0
        self.result = PickleResult(start=src.tell(), end=src.tell(), protocol=0, opcodes=0, stopped=False)
        self.findings_once: set[tuple[str, str]] = set()

    # -- helpers -------------------------------------------------------
    def pop_mark(self) -> list[Any]:
        items = self.stack
        if not self.metastack:
            raise _Malformed("opcode needs a MARK but none is open", self.at)
        self.stack = self.metastack.pop()
        return items

    def top(self) -> Any:
        if not self.stack:
            raise _Malformed("stack underflow", self.at)
        return self.stack[-1]

    def pop(self) -> Any:
        if not self.stack:
            raise _Malformed("stack underflow", self.at)
        return self.stack.pop()

    def line(self) -> bytes:
        return self.src.readline(self.limits.max_line_bytes)

    def text(self, data: bytes, encoding: str = "utf-8", errors: str = "strict") -> str:
        try:
            return data.decode(encoding, errors)
        except UnicodeDecodeError as exc:
            raise _Malformed(f"undecodable text: {exc.reason}", self.at) from None

    def read_str(self, n: int) -> str | Blob:
        if n > _KEEP_STR:
            head = self.src.read(_KEEP_STR)
            self.src.skip(n - _KEEP_STR)
            return Blob(n, head)
        # pickle.py decodes BINUNICODE* with 'surrogatepass' (lone surrogates load).
        return self.text(self.src.read(n), "utf-8", "surrogatepass") if n else ""

    def read_bytes(self, n: int) -> bytes | Blob:
        if n > _KEEP_BYTES:
            head = self.src.read(16)
            self.src.skip(n - 16)
            return Blob(n, head)
        return self.src.read(n)

    def memo_get(self, idx: int) -> Any:
        try:
            return self.memo.get(idx)
        except KeyError:
            raise _Malformed(f"memo has no entry {idx}", self.at) from None

    def memo_put(self, idx: int, value: Any) -> None:
        if idx < 0:
            raise _Malformed("negative memo index", self.at)
        if len(self.memo) >= self.limits.max_memo and idx >= len(self.memo.entries):
            raise LimitHit("max_memo", f"more than {self.limits.max_memo} memo entries")
        self.memo.put(idx, value)

    def need_kind(self, box: Box, how: str, kind: str) -> None:
        # pickle.py calls append/extend, __setitem__ or add/update on the target:
        # on the wrong built-in container the real load fails.
        if box.kind != kind:
            raise _Malformed(f"{how} on a {box.kind}", self.at)

    def mutate(self, target: Any, how: str) -> None:
        """Report a container opcode applied to something that is not a plain container."""
        raise NotImplementedError
