"""The emulator's fast path: the opcodes that make up almost every real pickle.

Data opcodes (strings, numbers, containers, memo traffic) are handled here in
one tight loop over the source's buffer; anything else (globals, calls,
BUILD, text opcodes, framing, buffer refills, errors) drops back to the
general handlers in `_emulator`, which remain the single definition of the
semantics. Each branch mirrors the corresponding `load_*` of CPython's
`Lib/pickle.py`.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pipewarden.scan._pickle._values import Box

if TYPE_CHECKING:
    from pipewarden.scan._pickle._emulator import _Emulator

_LOOKAHEAD = 16  # longest fixed-size argument handled here (8) plus margin
_KEEP = Box.KEEP
_FAR = 1 << 62
_unpack_d = struct.Struct(">d").unpack_from
_unpack_i = struct.Struct("<i").unpack_from
_unpack_I = struct.Struct("<I").unpack_from
_unpack_H = struct.Struct("<H").unpack_from
_KEY_TYPES = (str, int, float, bool, type(None))


def fast_run(emu: _Emulator, count: int) -> int:
    """Run opcodes from the buffer until one needs the general path; return the opcode count."""
    src = emu.src
    buf = src._buf
    pos = src._pos
    start = src._start
    limit = len(buf) - _LOOKAHEAD
    if pos >= limit:
        return count
    stack = emu.stack
    metastack = emu.metastack
    memo = emu.memo
    entries = memo.entries
    heap = memo.heap
    objs = memo.objs
    encode = memo.encode
    frame_end = emu.frame_end
    fe = frame_end - start if frame_end is not None else _FAR
    max_depth = emu.limits.max_depth
    max_memo = emu.limits.max_memo
    next_check = emu.next_check
    while pos < limit:
        op = pos
        code = buf[pos]
        if code == 0x68:  # BINGET
            i = buf[pos + 1]
            if i >= len(entries):
                break
            e = entries[i]
            if e & 1:
                stack.append(objs[e >> 1])
            else:
                s = e >> 17
                stack.append(heap[s : s + ((e >> 1) & 0xFFFF)].decode("utf-8", "surrogatepass"))
            pos += 2
        elif code == 0x94:  # MEMOIZE
            if not stack or len(entries) >= max_memo:
                break
            entries.append(encode(stack[-1]))
            pos += 1
        elif code == 0x8C:  # SHORT_BINUNICODE
            n = buf[pos + 1]
            end = pos + 2 + n
            if end > limit:
                break
            try:
                stack.append(buf[pos + 2 : end].decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError:
                break
            pos = end
        elif code == 0x4B:  # BININT1
            stack.append(buf[pos + 1])
            pos += 2
        elif code == 0x28:  # MARK
            if len(metastack) >= max_depth:
                break
            metastack.append(stack)
            stack = []
            pos += 1
        elif code == 0x75 or code == 0x65:  # SETITEMS, APPENDS
            if not metastack:
                break
            below = metastack[-1]
            if not below or type(below[-1]) is not Box:
                break
            target = below[-1]
            if target.kind != ("dict" if code == 0x75 else "list"):
                break
            items = stack
            stack = metastack.pop()
            kept = target.items
            if code == 0x75:
                target.size += len(items) >> 1
                if len(kept) < _KEEP:
                    for k in range(0, len(items) - 1, 2):
                        key = items[k]
                        if len(kept) < _KEEP and isinstance(key, _KEY_TYPES):
                            kept[key] = items[k + 1]
            else:
                target.size += len(items)
                if len(kept) < _KEEP:
                    kept.extend(items[: _KEEP - len(kept)])
            pos += 1
        elif code == 0x7D:  # EMPTY_DICT
            stack.append(Box("dict"))
            pos += 1
        elif code == 0x5D:  # EMPTY_LIST
            stack.append(Box("list"))
            pos += 1
        elif code == 0x47:  # BINFLOAT
            stack.append(_unpack_d(buf, pos + 1)[0])
            pos += 9
        elif code == 0x4A:  # BININT
            stack.append(_unpack_i(buf, pos + 1)[0])
            pos += 5
        elif code == 0x4D:  # BININT2
            stack.append(_unpack_H(buf, pos + 1)[0])
            pos += 3
        elif code == 0x71 or code == 0x72:  # BINPUT, LONG_BINPUT
            if code == 0x71:
                i, width = buf[pos + 1], 2
            else:
                i, width = _unpack_I(buf, pos + 1)[0], 5
            if not stack or i > len(entries) or i >= max_memo:
                break
            if i == len(entries):
                entries.append(encode(stack[-1]))
            else:
                entries[i] = encode(stack[-1])
            pos += width
        elif code == 0x6A:  # LONG_BINGET
            i = _unpack_I(buf, pos + 1)[0]
            if i >= len(entries):
                break
            stack.append(memo.decode(entries[i]))
            pos += 5
        elif code == 0x85:  # TUPLE1
            if not stack:
                break
            stack[-1] = (stack[-1],)
            pos += 1
        elif code == 0x86:  # TUPLE2
            if len(stack) < 2:
                break
            b = stack.pop()
            stack[-1] = (stack[-1], b)
            pos += 1
        elif code == 0x87:  # TUPLE3
            if len(stack) < 3:
                break
            c = stack.pop()
            b = stack.pop()
            stack[-1] = (stack[-1], b, c)
            pos += 1
        elif code == 0x29:  # EMPTY_TUPLE
            stack.append(())
            pos += 1
        elif code == 0x4E:  # NONE
            stack.append(None)
            pos += 1
        elif code == 0x88:  # NEWTRUE
            stack.append(True)
            pos += 1
        elif code == 0x89:  # NEWFALSE
            stack.append(False)
            pos += 1
        elif code == 0x61 or code == 0x73:  # APPEND, SETITEM
            need = 2 if code == 0x61 else 3
            if len(stack) < need or type(stack[-need]) is not Box:
                break
            target = stack[-need]
            if target.kind != ("list" if code == 0x61 else "dict"):
                break
            if code == 0x61:
                value = stack.pop()
                target.size += 1
                if len(target.items) < _KEEP:
                    target.items.append(value)
            else:
                value = stack.pop()
                key = stack.pop()
                target.size += 1
                if len(target.items) < _KEEP and isinstance(key, _KEY_TYPES):
                    target.items[key] = value
            pos += 1
        elif code == 0x74:  # TUPLE
            if not metastack:
                break
            items = stack
            stack = metastack.pop()
            stack.append(tuple(items) if len(items) <= _KEEP else Box("tuple", items[:_KEEP]))
            pos += 1
        else:
            break
        count += 1
        if pos > fe:
            if op < fe:
                emu.frame_violation = (
                    f"opcode at byte {start + op} runs past the frame that ends at byte {start + fe}"
                )
            emu.frame_end = None
            fe = _FAR
        if count >= next_check:
            emu.stack = stack
            src._pos = pos
            emu.periodic_check(count)
            next_check = emu.next_check
    emu.stack = stack
    src._pos = pos
    return count
