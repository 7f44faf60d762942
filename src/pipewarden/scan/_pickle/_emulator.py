"""A symbolic emulator of CPython's unpickler, opcode for opcode.

It follows `Lib/pickle.py` (`_Unpickler.load_*`) and `Modules/_pickle.c`
exactly where they agree, and the more permissive of the two where they do
not (framing: the C unpickler treats FRAME as a read-ahead hint, so opcodes
may straddle frame ends; the Python one refuses). Every `find_class` the real
unpickler would perform is judged against the allowlist, every call is
checked for a statically known target, and nothing is ever imported,
constructed or called.

Techniques it sees through, each with a regression case in
``tests/scan/corpus/`` and ``tests/scan/test_emulator.py``: memo
indirection (GLOBAL, PUT, ...
GET, REDUCE), names computed at load time (STACK_GLOBAL over values that are
results of calls), dotted names resolved by protocol-4 `find_class`,
protocol-2 `fix_imports` renames (``__builtin__`` → ``builtins``), INST/OBJ,
NEWOBJ/NEWOBJ_EX, BUILD on classes or modules, EXT1/2/4, persistent ids,
FRAME-length tricks, several pickles in a row and calls hidden after
malformed data.
"""

from __future__ import annotations

import _compat_pickle
import struct
from collections.abc import Callable
from typing import Any

from pipewarden.scan._context import LimitHit, ScanContext
from pipewarden.scan._pickle._conditional import all_resolved, check_call, check_partial_state
from pipewarden.scan._pickle._fast import fast_run
from pipewarden.scan._pickle._ops_data import DataOps
from pipewarden.scan._pickle._source import EndOfData, LineTooLong, Source
from pipewarden.scan._pickle._state import PickleResult, _GlobalUse, _Malformed, _Stop
from pipewarden.scan._pickle._values import (
    Box,
    GlobalRef,
    Made,
    Opaque,
    PersRef,
    describe,
    is_symbolic_text,
)
from pipewarden.scan._policy import Verdict

__all__ = ["OPCODE_BYTES", "PickleResult", "emulate"]

_unpack_i = struct.Struct("<i").unpack
_unpack_Q = struct.Struct("<Q").unpack
_unpack_H = struct.Struct("<H").unpack


class _Emulator(DataOps):
    """The whole unpickler: data handlers from `DataOps`, plus globals, calls and state."""

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
        table = _DISPATCH
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
                handler(self)
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

# One dispatch table for every emulator, built once: opcode byte -> handler.
_DISPATCH: list[Callable[[_Emulator], None] | None] = [None] * 256
for _name, _code in _OPCODES.items():
    _DISPATCH[_code] = getattr(_Emulator, f"op_{_name}")


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
