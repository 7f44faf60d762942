"""Malicious pickles, one per technique of the pickle virtual machine."""

from __future__ import annotations

import pickle
from collections.abc import Callable

from tests.scan._asm import (
    MARKER,
    binunicode,
    call1,
    echo,
    frame,
    glob,
    proto,
    sbu,
    stack_global,
    system_call,
)
from tests.scan.corpus._common import (
    P,
)

# --- pickle virtual-machine techniques ------------------------------------------------------


def _memo_indirection() -> bytes:
    # GLOBAL stored in the memo, popped, and fetched back much later: scanners
    # that only look at neighbouring opcodes miss the call.
    return (
        proto(2)
        + glob("os", "system")
        + P.BINPUT
        + b"\x05"
        + P.POP
        + P.EMPTY_DICT
        + P.POP
        + P.BINGET
        + b"\x05"
        + binunicode(echo("memo"))
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )


def _stack_global_memo_names() -> bytes:
    # Protocol 4 STACK_GLOBAL whose module and name strings come out of the memo.
    return (
        proto(4)
        + sbu("os")
        + P.MEMOIZE
        + sbu("system")
        + P.MEMOIZE
        + P.POP
        + P.POP
        + P.BINGET
        + b"\x00"
        + P.BINGET
        + b"\x01"
        + P.STACK_GLOBAL
        + sbu(echo("stackglobal-memo"))
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )


def _computed_name() -> bytes:
    # Module name produced at load time by an allowlisted call: str('os').
    return (
        proto(4)
        + stack_global("builtins", "str")
        + sbu("os")
        + P.TUPLE1
        + P.REDUCE
        + sbu("system")
        + P.STACK_GLOBAL
        + sbu(echo("computed"))
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )


def _dotted_name() -> bytes:
    # Protocol 4 find_class resolves dotted names: logging.os.system is os.system.
    return (
        proto(4) + stack_global("logging", "os.system") + sbu(echo("dotted")) + P.TUPLE1 + P.REDUCE + P.STOP
    )


def _fix_imports() -> bytes:
    # Protocol 2 renames __builtin__ to builtins when loading (fix_imports=True).
    code = f"print('{MARKER}-fiximports')"
    return proto(2) + call1(glob("__builtin__", "eval"), binunicode(code)) + P.STOP


def _inst() -> bytes:
    # INST: protocol 0 instantiation, the class named inline.
    return P.MARK + P.STRING + f"'{echo('inst')}'\n".encode() + P.INST + b"os\nsystem\n" + P.STOP


def _obj() -> bytes:
    # OBJ: callable and arguments after one MARK.
    return P.MARK + glob("os", "system") + binunicode(echo("obj")) + P.OBJ + P.STOP


def _newobj_partial() -> bytes:
    # NEWOBJ builds functools.partial(os.system, cmd); REDUCE then calls the
    # *result*, a callable the file never names.
    return (
        proto(2)
        + glob("functools", "partial")
        + glob("os", "system")
        + binunicode(echo("newobj"))
        + P.TUPLE2
        + P.NEWOBJ
        + P.EMPTY_TUPLE
        + P.REDUCE
        + P.STOP
    )


def _newobj_ex() -> bytes:
    return (
        proto(4)
        + stack_global("functools", "partial")
        + stack_global("os", "system")
        + sbu(echo("newobjex"))
        + P.TUPLE2
        + P.EMPTY_DICT
        + P.NEWOBJ_EX
        + P.EMPTY_TUPLE
        + P.REDUCE
        + P.STOP
    )


def _eval_builtin() -> bytes:
    return proto(2) + call1(glob("builtins", "exec"), binunicode(f"print('{MARKER}-exec')")) + P.STOP


def _subprocess() -> bytes:
    cmd = P.MARK + binunicode("echo") + binunicode(f"{MARKER}-subprocess") + P.LIST
    return proto(2) + glob("subprocess", "check_call") + cmd + P.TUPLE1 + P.REDUCE + P.STOP


def _getattr_chain() -> bytes:
    # getattr(__import__('os'), 'system')(cmd): every piece a builtin.
    imp = call1(glob("builtins", "__import__"), binunicode("os"))
    get = glob("builtins", "getattr") + imp + binunicode("system") + P.TUPLE2 + P.REDUCE
    return proto(2) + get + binunicode(echo("getattr")) + P.TUPLE1 + P.REDUCE + P.STOP


def _unknown_gadget() -> bytes:
    # A gadget missing from typical denylists: a stdlib helper that execs a string.
    code = f"print('{MARKER}-gadget')"
    return (
        proto(4)
        + stack_global("numpy.testing._private.utils", "runstring")
        + sbu(code)
        + P.EMPTY_DICT
        + P.TUPLE2
        + P.REDUCE
        + P.STOP
    )


def _gadget(module: str, name: str, *args: bytes) -> Callable[[], bytes]:
    """module.name(*args) through protocol 4: for gadgets that published denylists missed."""

    def build() -> bytes:
        return proto(4) + stack_global(module, name) + P.MARK + b"".join(args) + P.TUPLE + P.REDUCE + P.STOP

    return build


def _bound_method_gadget() -> bytes:
    # code.InteractiveInterpreter().runsource(src): an instance from an
    # innocent-looking class, then one of its methods by dotted name.
    inst = stack_global("code", "InteractiveInterpreter") + P.EMPTY_TUPLE + P.REDUCE
    call = (
        stack_global("code", "InteractiveInterpreter.runsource") + inst + sbu(f"print('{MARKER}-runsource')")
    )
    return proto(4) + call + P.TUPLE2 + P.REDUCE + P.STOP


def _setstate_hijack() -> bytes:
    # BUILD sets an instance's __setstate__ to os.system; a second BUILD calls it.
    inst = glob("argparse", "Namespace") + P.EMPTY_TUPLE + P.REDUCE
    hijack = P.EMPTY_DICT + binunicode("__setstate__") + glob("os", "system") + P.SETITEM + P.BUILD
    return proto(2) + inst + hijack + binunicode(echo("setstate")) + P.BUILD + P.STOP


def _build_on_class() -> bytes:
    # BUILD with slot state on a *class*: setattr(argparse.Namespace, '__setstate__',
    # os.system) rewrites a class other code uses; the next instance's BUILD calls it.
    state = P.NONE + P.EMPTY_DICT + binunicode("__setstate__") + glob("os", "system") + P.SETITEM + P.TUPLE2
    return (
        proto(2)
        + glob("argparse", "Namespace")
        + state
        + P.BUILD
        + P.POP
        + glob("argparse", "Namespace")
        + P.EMPTY_TUPLE
        + P.REDUCE
        + binunicode(echo("buildclass"))
        + P.BUILD
        + P.STOP
    )


def _ext_code() -> bytes:
    # EXT1 names a global through copyreg's extension registry (filled by the loader's process).
    return proto(2) + P.EXT1 + b"\xf0" + binunicode(echo("ext")) + P.TUPLE1 + P.REDUCE + P.STOP


def _frame_straddle() -> bytes:
    # FRAME claims 3 bytes, but the call runs far past it: the C unpickler
    # loads it, tools that trust frame lengths see something else.
    body = call1(stack_global("os", "system"), sbu(echo("frame"))) + P.STOP
    return proto(4) + frame(body, length=3)


def _frame_hidden() -> bytes:
    # A huge declared frame swallowing the payload for parsers that skip frames.
    body = call1(stack_global("os", "system"), sbu(echo("framehuge"))) + P.STOP
    return proto(4) + frame(body, length=len(body) + 1_000_000)


def _second_pickle() -> bytes:
    # A benign pickle followed by a malicious one: loaders that call pickle.load
    # repeatedly (or scanners that stop at the first STOP) differ.
    return pickle.dumps({"weights": [1.0, 2.0]}, protocol=4) + system_call("second", proto_n=4)


def _after_malformed() -> bytes:
    # The call runs, then the stream breaks: the loader raises after the damage.
    return proto(2) + call1(glob("os", "system"), binunicode(echo("malformed"))) + b"\xff\xff garbage"


def _truncated() -> bytes:
    return proto(2) + call1(glob("os", "system"), binunicode(echo("truncated")))


def _proto0_text() -> bytes:
    return system_call("proto0", proto_n=0)


def _weird_name() -> bytes:
    # A dotted attribute path into os through a module that imports it.
    return proto(4) + stack_global("gettext", "os.system") + sbu(echo("weird")) + P.TUPLE1 + P.REDUCE + P.STOP


def _runpy() -> bytes:
    code = binunicode(f"print('{MARKER}-runpy')")
    return proto(2) + glob("runpy", "_run_code") + code + P.EMPTY_DICT + P.TUPLE2 + P.REDUCE + P.STOP
