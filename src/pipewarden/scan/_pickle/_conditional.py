"""Globals that are safe or not depending on their arguments: `getattr` and `functools.partial`.

Pickle protocol 4 writes a class's bound methods (classmethods such as
``ZoneInfo._unpickle``, which pandas time zones use) as
``getattr(cls, "name")``, and scikit-learn keeps ``functools.partial`` objects
around checked functions. Both are dangerous in general (every published
getattr and partial gadget), so they pass only when the emulator can resolve
them statically: ``getattr(<allowlisted class>, "<constant>")`` whose dotted
result is itself on the allowlist, and ``partial(<allowlisted function>, ...)``
whose state, set later by BUILD, names the same allowlisted function. Any
other use, and any reference that is not such a call, is reported as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipewarden.scan._pickle._values import GlobalRef, Made
from pipewarden.scan._policy import Verdict

if TYPE_CHECKING:
    from pipewarden.scan._pickle._emulator import _Emulator

__all__ = ["GETATTR", "PARTIAL", "check_call", "check_partial_state"]

GETATTR = ("builtins", "getattr")
PARTIAL = ("functools", "partial")
CONDITIONAL = frozenset({GETATTR, PARTIAL})


def check_call(emu: _Emulator, func: GlobalRef, args: Any) -> Any:
    """Judge a call of a conditional global; returns the value to push, or None for the default."""
    key = (func.module, func.name)
    if key not in CONDITIONAL:
        return None
    use = emu.result.globals.get(key)
    if use is None:
        return None
    use.conditional_calls += 1
    if key == GETATTR:
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], GlobalRef)
            and args[0].safe
            and isinstance(args[1], str)
        ):
            owner, attr = args[0], args[1]
            resolved = emu.find_class(owner.module, f"{owner.name}.{attr}")
            if resolved.safe:
                use.resolved_calls += 1
            return resolved
        return None
    if isinstance(args, tuple) and len(args) >= 1 and isinstance(args[0], GlobalRef) and args[0].safe:
        use.resolved_calls += 1
    return None


def check_partial_state(emu: _Emulator, inst: Made, state: Any) -> None:
    """BUILD on a partial replaces its function: the new one must be the same safe global."""
    use = emu.result.globals.get(PARTIAL)
    if use is None:
        return
    func = inst.args[0] if isinstance(inst.args, tuple) and inst.args else None
    new = state[0] if isinstance(state, tuple) and state else None
    ok = (
        isinstance(func, GlobalRef)
        and func.safe
        and isinstance(new, GlobalRef)
        and new.module == func.module
        and new.name == func.name
    )
    if not ok and use.resolved_calls:
        use.resolved_calls -= 1


def all_resolved(key: tuple[str, str], use: Any) -> bool:
    """True if every reference to this conditional global was a call resolved to safe targets."""
    return (
        key in CONDITIONAL
        and use.verdict is Verdict.DANGEROUS
        and use.conditional_calls >= use.count
        and use.resolved_calls == use.conditional_calls
    )
