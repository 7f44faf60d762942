"""joblib's inline arrays: raw array bytes written into the pickle stream.

joblib (``numpy_pickle.NumpyPickler``) pickles a `NumpyArrayWrapper` for each
array and writes the array's bytes right after the wrapper's BUILD opcode,
outside any frame; its unpickler reads them in `load_build`. Arrays of Python
objects are written as a nested pickle instead. The emulator must consume
exactly those bytes to stay in step with the stream, so it sizes the array
from the wrapper's state (shape, dtype) the way joblib's `read_array` does.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from pipewarden.scan._pickle._values import Box, Made, describe

if TYPE_CHECKING:
    from pipewarden.scan._pickle._emulator import _Emulator

_DESCR = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)$")
_FIXED = {"b": 1, "?": 1, "M": 8, "m": 8}
_NPY_ITEM_REFCOUNT = 0x01  # dtype flag: the dtype holds Python object references


def _dtype_facts(dtype: Any) -> tuple[int, bool] | None:
    """(itemsize, hasobject) for a pickled numpy dtype, or None if it cannot be known."""
    if not isinstance(dtype, Made) or not dtype.made_by("numpy.dtype"):
        return None
    args = dtype.args
    if not isinstance(args, tuple) or not args or not isinstance(args[0], str):
        return None
    match = _DESCR.match(args[0])
    if not match:
        return None
    kind, digits = match.group(1), match.group(2)
    state = dtype.state
    flags = state[7] if isinstance(state, tuple) and len(state) >= 8 and isinstance(state[7], int) else None
    hasobject = kind == "O" or (flags is not None and bool(flags & _NPY_ITEM_REFCOUNT))
    if kind == "O":
        return 8, True
    if digits:
        size = int(digits) * (4 if kind == "U" else 1)
    elif kind in _FIXED:
        size = _FIXED[kind]
    else:
        return None
    return size, hasobject


def read_joblib_array(emu: _Emulator, wrapper: Made) -> None:
    """Consume the array data that follows a joblib array wrapper's BUILD."""
    from pipewarden.scan._pickle._emulator import emulate
    from pipewarden.scan._pickle._state import _Malformed

    state = wrapper.state
    where = emu.at
    if wrapper.made_by("joblib.numpy_pickle.NDArrayWrapper"):
        # joblib < 0.10 kept arrays in side files that np.load reads with
        # allow_pickle=True; the wrapper itself is judged by the allowlist.
        return
    if not isinstance(state, Box) or state.kind != "dict":
        raise _Malformed(f"joblib array wrapper with state {describe(state)}", where)
    shape = state.items.get("shape")
    facts = _dtype_facts(state.items.get("dtype"))
    if (
        not isinstance(shape, tuple)
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        or facts is None
    ):
        raise _Malformed(
            "joblib array wrapper whose shape or dtype cannot be sized statically "
            f"(shape={describe(shape)}, dtype={describe(state.items.get('dtype'))})",
            where,
        )
    itemsize, hasobject = facts
    if emu.frame_end is not None:
        if emu.src.tell() < emu.frame_end:
            # joblib reads array bytes from the file, behind the unpickler's frame
            # buffer: data placed inside a frame is read differently by each side.
            raise _Malformed("joblib array data starts inside a pickle frame", where)
        emu.frame_end = None
    if hasobject:
        inner = emulate(emu.src, emu.ctx, member=emu.member, joblib_arrays=False)
        if not inner.stopped:
            raise _Malformed(f"nested pickle of a joblib object array: {inner.error}", where)
        return
    if "numpy_array_alignment_bytes" in state.items:
        padding = emu.src.read(1)[0]
        emu.src.skip(padding)
    emu.src.skip(math.prod(shape) * itemsize)
