"""A symbolic emulator of CPython's unpickler, opcode for opcode.

It follows `Lib/pickle.py` (`_Unpickler.load_*`) and `Modules/_pickle.c`
exactly where they agree, and the more permissive of the two where they do
not (framing: the C unpickler treats FRAME as a read-ahead hint, so opcodes
may straddle frame ends; the Python one refuses). Every `find_class` the real
unpickler would perform is judged against the allowlist, every call is
checked for a statically known target, and nothing is ever imported,
constructed or called.

Techniques it sees through, each with a regression test in
``tests/scan/test_pickle_techniques.py``: memo indirection (GLOBAL, PUT, ...
GET, REDUCE), names computed at load time (STACK_GLOBAL over values that are
results of calls), dotted names resolved by protocol-4 `find_class`,
protocol-2 `fix_imports` renames (``__builtin__`` → ``builtins``), INST/OBJ,
NEWOBJ/NEWOBJ_EX, BUILD on classes or modules, EXT1/2/4, persistent ids,
FRAME-length tricks, several pickles in a row and calls hidden after
malformed data.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipewarden.scan._context import LimitHit, ScanContext
from pipewarden.scan._pickle._conditional import all_resolved, check_call, check_partial_state
from pipewarden.scan._pickle._fast import fast_run
from pipewarden.scan._pickle._memo import Memo
from pipewarden.scan._pickle._source import EndOfData, LineTooLong, Source
from pipewarden.scan._pickle._values import (
    Blob,
    Box,
    GlobalRef,
    Made,
    Opaque,
    PersRef,
    describe,
    is_symbolic_text,
)
from pipewarden.scan._policy import Verdict

__all__ = ["PickleResult", "emulate"]

_KEEP_STR = 4096  # longer strings are read but kept as a prefix
_KEEP_BYTES = 64
_MAX_BIGINT = 1 << 16  # bytes of LONG1/LONG4 payload we decode

_unpack_i = struct.Struct("<i").unpack
_unpack_I = struct.Struct("<I").unpack
_unpack_Q = struct.Struct("<Q").unpack
_unpack_d = struct.Struct(">d").unpack
_unpack_H = struct.Struct("<H").unpack


class _Malformed(Exception):
    """The real unpickler would stop here with an error."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Stop(Exception):
    pass


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


class _Emulator:
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
        table: list[Callable[[], None] | None] = [None] * 256
        for name in dir(self):
            if name.startswith("op_"):
                code = _OPCODES[name[3:]]
                table[code] = getattr(self, name)
        self.table = table

    # -- reporting -----------------------------------------------------
    def finding(self, rule_id: str, message: str, *, key: str, evidence: dict[str, Any]) -> None:
        if (rule_id, key) in self.findings_once:
            return
        self.findings_once.add((rule_id, key))
        self.ctx.add(rule_id, member=self.member, offset=self.at, message=message, evidence=evidence)

    # -- main loop -----------------------------------------------------
    def run(self) -> PickleResult:
        res = self.result
        src = self.src
        table = self.table
        count = 0
        try:
            while True:
                count = fast_run(self, count)
                self.at = src.tell()
                code = src.read_byte()
                if code < 0:
                    raise _Malformed("pickle ends without a STOP opcode", self.at)
                handler = table[code]
                if handler is None:
                    raise _Malformed(f"invalid opcode 0x{code:02x}", self.at)
                count += 1
                if count >= self.next_check:
                    self.periodic_check(count)
                handler()
                if self.frame_end is not None and src.tell() > self.frame_end:
                    if self.at < self.frame_end:
                        self.frame_violation = (
                            f"opcode at byte {self.at} runs past the frame that ends at byte {self.frame_end}"
                        )
                    self.frame_end = None
        except _Stop:
            res.stopped = True
        except _Malformed as exc:
            res.error, res.error_offset = str(exc), exc.offset
        except EndOfData as exc:
            res.error, res.error_offset = f"pickle is truncated: {exc}", exc.offset
        except LineTooLong as exc:
            res.error, res.error_offset = f"text opcode line too long: {exc}", exc.offset
        except LimitHit as exc:
            res.error, res.error_offset = f"limit {exc.limit} reached: {exc}", self.at
            self.ctx.add(
                "PW-SCAN-203",
                member=self.member,
                offset=self.at,
                message=f"pickle emulation stopped: {exc}; the rest of the stream was not checked",
                evidence={"limit": exc.limit},
            )
        res.opcodes = count
        res.protocol = self.proto
        res.end = src.tell()
        if self.frame_violation:
            self.ctx.add(
                "PW-SCAN-108",
                member=self.member,
                offset=res.start,
                message=f"{self.frame_violation}: parsers that trust FRAME lengths and CPython disagree "
                "on what this stream contains",
                evidence={},
            )
        return res

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

    def find_class(self, module: Any, name: Any) -> GlobalRef:
        if not isinstance(module, str) or not isinstance(name, str):
            what = describe(module) + ", " + describe(name)
            if is_symbolic_text(module) or is_symbolic_text(name):
                self.finding(
                    "PW-SCAN-104",
                    f"STACK_GLOBAL takes its module and name from values computed at load time ({what}); "
                    "what it imports cannot be known without running the file",
                    key=what,
                    evidence={"module": describe(module), "name": describe(name)},
                )
                return GlobalRef("<computed>", "<computed>", safe=False, offset=self.at)
            raise _Malformed(f"STACK_GLOBAL needs two strings, got {what}", self.at)
        if self.proto < 3:
            # fix_imports=True is the default of pickle.load, torch.load and joblib.load.
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        key = (module, name)
        use = self.result.globals.get(key)
        if use is None:
            verdict = self.ctx.policy.classify(module, name)
            use = _GlobalUse(verdict.verdict, verdict.reason, self.at)
            self.result.globals[key] = use
        use.count += 1
        return GlobalRef(module, name, safe=use.verdict is Verdict.SAFE, offset=use.offset)

    def call(self, func: Any, args: Any, how: str) -> Any:
        if isinstance(func, GlobalRef):
            if how == "REDUCE" and not func.safe:
                resolved = check_call(self, func, args)
                if resolved is not None:
                    return resolved
            if not func.safe:
                use = self.result.globals.get((func.module, func.name))
                if use is not None and len(use.calls) < 3:
                    use.calls.append(f"{how} {describe(args)}")
        else:
            target = describe(func)
            self.finding(
                "PW-SCAN-103",
                f"{how} calls {target}, which is not a global the file names: the callable is "
                "produced while loading, so what runs cannot be checked statically",
                key=f"{how}:{target}",
                evidence={"opcode": how, "target": target, "args": describe(args)},
            )
        return Made(func, args)

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

    def periodic_check(self, count: int) -> None:
        """Every 65,536 opcodes (and at --max-opcodes): the opcode, memo, stack and time limits."""
        limits = self.limits
        self.next_check = min(count + 0x10000, limits.max_opcodes + 1)
        if count > limits.max_opcodes:
            raise LimitHit("max_opcodes", f"more than {limits.max_opcodes} opcodes")
        if len(self.memo) > limits.max_memo:
            raise LimitHit("max_memo", f"more than {limits.max_memo} memo entries")
        if len(self.stack) > limits.max_stack:
            raise LimitHit("max_stack", f"more than {limits.max_stack} stack items")
        self.ctx.check_time()

    def need_kind(self, box: Box, how: str, kind: str) -> None:
        # pickle.py calls append/extend, __setitem__ or add/update on the target:
        # on the wrong built-in container the real load fails.
        if box.kind != kind:
            raise _Malformed(f"{how} on a {box.kind}", self.at)

    def mutate(self, target: Any, how: str) -> None:
        """APPEND(S)/SETITEM(S)/ADDITEMS/BUILD on `target` call methods of `target`."""
        if isinstance(target, GlobalRef):
            self.finding(
                "PW-SCAN-106",
                f"{how} changes {target.qualified} itself (a module-level class, function or object), "
                "which can rewrite code or settings other code relies on",
                key=f"{how}:{target.qualified}",
                evidence={"opcode": how, "target": target.qualified},
            )

    # -- opcodes: protocol and framing ---------------------------------
    def op_PROTO(self) -> None:
        proto = self.src.read(1)[0]
        if proto > 5:
            raise _Malformed(f"unsupported pickle protocol {proto}", self.at)
        self.proto = proto

    def op_FRAME(self) -> None:
        (size,) = _unpack_Q(self.src.read(8))
        if self.frame_end is not None and self.src.tell() < self.frame_end:
            self.frame_violation = f"FRAME at byte {self.at} starts inside the previous frame"
        self.frame_end = self.src.tell() + size

    def op_STOP(self) -> None:
        self.result.value = self.pop()
        raise _Stop

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

    # -- globals, calls and state ----------------------------------------
    def op_GLOBAL(self) -> None:
        module = self.text(self.line()[:-1])
        name = self.text(self.line()[:-1])
        self.stack.append(self.find_class(module, name))

    def op_STACK_GLOBAL(self) -> None:
        name = self.pop()
        module = self.pop()
        self.stack.append(self.find_class(module, name))

    def op_INST(self) -> None:
        module = self.text(self.line()[:-1], "ascii")
        name = self.text(self.line()[:-1], "ascii")
        klass = self.find_class(module, name)
        args = self.pop_mark()
        self.stack.append(self.call(klass, tuple(args), "INST"))

    def op_OBJ(self) -> None:
        args = self.pop_mark()
        if not args:
            raise _Malformed("OBJ with nothing after its MARK", self.at)
        self.stack.append(self.call(args[0], tuple(args[1:]), "OBJ"))

    def op_REDUCE(self) -> None:
        args = self.pop()
        func = self.top()
        self.stack[-1] = self.call(func, args, "REDUCE")

    def op_NEWOBJ(self) -> None:
        args = self.pop()
        cls = self.pop()
        self.stack.append(self.call(cls, args, "NEWOBJ"))

    def op_NEWOBJ_EX(self) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self.stack.append(self.call(cls, (args, kwargs), "NEWOBJ_EX"))

    def op_BUILD(self) -> None:
        state = self.pop()
        inst = self.top()
        self.mutate(inst, "BUILD")
        if isinstance(inst, Made):
            inst.state = state
            if inst.made_by("functools.partial"):
                check_partial_state(self, inst, state)
            if self.joblib_arrays and (
                inst.made_by("joblib.numpy_pickle.NumpyArrayWrapper")
                or inst.made_by("joblib.numpy_pickle.NDArrayWrapper")
            ):
                from pipewarden.scan._pickle._joblib import read_joblib_array

                read_joblib_array(self, inst)
        elif not isinstance(inst, Box | PersRef | Opaque):
            # BUILD on a plain value calls its __setstate__ or sets attributes on it;
            # both fail on ints, strings and tuples in a real load.
            if isinstance(inst, GlobalRef):
                return
            raise _Malformed(f"BUILD on {describe(inst)}", self.at)

    def _ext(self, code: int) -> None:
        self.finding(
            "PW-SCAN-105",
            f"extension code {code} names a global through copyreg's registry, which is filled at "
            "run time: the object it loads cannot be known statically",
            key=str(code),
            evidence={"code": code},
        )
        self.stack.append(GlobalRef("<copyreg extension>", str(code), safe=False, offset=self.at))

    def op_EXT1(self) -> None:
        self._ext(self.src.read(1)[0])

    def op_EXT2(self) -> None:
        self._ext(_unpack_H(self.src.read(2))[0])

    def op_EXT4(self) -> None:
        self._ext(_unpack_i(self.src.read(4))[0])

    def _persistent(self, pid: Any) -> None:
        self.result.persistent_ids += 1
        if (
            self.torch_ids
            and isinstance(pid, tuple)
            and len(pid) >= 2
            and pid[0] == "module"
            and isinstance(pid[1], GlobalRef)
        ):
            # Legacy torch.save: ('module', cls, file, source) resolves to cls, a
            # global already judged (torch/serialization.py, persistent_load).
            self.stack.append(pid[1])
            return
        if not self.torch_ids:
            self.finding(
                "PW-SCAN-107",
                f"persistent id {describe(pid)} is resolved by the loading program's persistent_load, "
                "whose behaviour the file does not determine",
                key="pid",
                evidence={"pid": describe(pid)},
            )
        self.stack.append(PersRef(pid))

    def op_PERSID(self) -> None:
        self._persistent(self.text(self.line()[:-1], "ascii"))

    def op_BINPERSID(self) -> None:
        self._persistent(self.pop())


# Opcode names to byte values, as defined in Lib/pickle.py.
_OPCODES: dict[str, int] = {
    "MARK": 0x28,
    "STOP": 0x2E,
    "POP": 0x30,
    "POP_MARK": 0x31,
    "DUP": 0x32,
    "FLOAT": 0x46,
    "INT": 0x49,
    "BININT": 0x4A,
    "BININT1": 0x4B,
    "LONG": 0x4C,
    "BININT2": 0x4D,
    "NONE": 0x4E,
    "PERSID": 0x50,
    "BINPERSID": 0x51,
    "REDUCE": 0x52,
    "STRING": 0x53,
    "BINSTRING": 0x54,
    "SHORT_BINSTRING": 0x55,
    "UNICODE": 0x56,
    "BINUNICODE": 0x58,
    "APPEND": 0x61,
    "BUILD": 0x62,
    "GLOBAL": 0x63,
    "DICT": 0x64,
    "EMPTY_DICT": 0x7D,
    "APPENDS": 0x65,
    "GET": 0x67,
    "BINGET": 0x68,
    "INST": 0x69,
    "LONG_BINGET": 0x6A,
    "LIST": 0x6C,
    "EMPTY_LIST": 0x5D,
    "OBJ": 0x6F,
    "PUT": 0x70,
    "BINPUT": 0x71,
    "LONG_BINPUT": 0x72,
    "SETITEM": 0x73,
    "TUPLE": 0x74,
    "EMPTY_TUPLE": 0x29,
    "SETITEMS": 0x75,
    "BINFLOAT": 0x47,
    "PROTO": 0x80,
    "NEWOBJ": 0x81,
    "EXT1": 0x82,
    "EXT2": 0x83,
    "EXT4": 0x84,
    "TUPLE1": 0x85,
    "TUPLE2": 0x86,
    "TUPLE3": 0x87,
    "NEWTRUE": 0x88,
    "NEWFALSE": 0x89,
    "LONG1": 0x8A,
    "LONG4": 0x8B,
    "BINBYTES": 0x42,
    "SHORT_BINBYTES": 0x43,
    "SHORT_BINUNICODE": 0x8C,
    "BINUNICODE8": 0x8D,
    "BINBYTES8": 0x8E,
    "EMPTY_SET": 0x8F,
    "ADDITEMS": 0x90,
    "FROZENSET": 0x91,
    "NEWOBJ_EX": 0x92,
    "STACK_GLOBAL": 0x93,
    "MEMOIZE": 0x94,
    "FRAME": 0x95,
    "BYTEARRAY8": 0x96,
    "NEXT_BUFFER": 0x97,
    "READONLY_BUFFER": 0x98,
}

OPCODE_BYTES = frozenset(_OPCODES.values())


def emulate(
    src: Source,
    ctx: ScanContext,
    *,
    member: str | None,
    torch_ids: bool = False,
    joblib_arrays: bool = False,
) -> PickleResult:
    """Emulate one pickle from the current position of `src` and report what it does.

    Findings about globals are added to `ctx` even when the stream is
    malformed after them: the real unpickler runs every call it reaches
    before it fails.
    """
    emu = _Emulator(src, ctx, member, torch_ids=torch_ids, joblib_arrays=joblib_arrays)
    result = emu.run()
    _report_globals(ctx, member, result)
    return result


def _report_globals(ctx: ScanContext, member: str | None, result: PickleResult) -> None:
    for (module, name), use in result.globals.items():
        if use.verdict is Verdict.SAFE or all_resolved((module, name), use):
            continue
        qualified = f"{module}.{name}"
        evidence: dict[str, Any] = {
            "global": qualified,
            "references": use.count,
            "reason": use.reason,
        }
        if use.calls:
            evidence["calls"] = use.calls
        if use.verdict is Verdict.DANGEROUS:
            called = f", called as {use.calls[0]}" if use.calls else ""
            ctx.add(
                "PW-SCAN-101",
                member=member,
                offset=use.offset,
                message=f"{qualified}: {use.reason}{called}",
                evidence=evidence,
            )
        else:
            ctx.add(
                "PW-SCAN-102",
                member=member,
                offset=use.offset,
                message=f"{qualified} is not on the allowlist; loading imports its module and may call "
                f"it. If you trust it, add `global: {qualified}` to a --policy file",
                evidence=evidence,
            )
