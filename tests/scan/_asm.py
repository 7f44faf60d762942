"""A tiny pickle assembler for building malicious fixtures opcode by opcode.

Every fixture's payload is harmless: it prints a marker with `echo` or
`print`, so a test can prove that the ordinary loader runs it.
"""

from __future__ import annotations

import pickle
import struct

MARKER = "PWNED"


def proto(n: int) -> bytes:
    return pickle.PROTO + bytes([n])


def sbu(text: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4)."""
    data = text.encode()
    assert len(data) < 256
    return pickle.SHORT_BINUNICODE + bytes([len(data)]) + data


def binunicode(text: str) -> bytes:
    data = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def glob(module: str, name: str) -> bytes:
    """GLOBAL: text-mode module and name lines (every protocol)."""
    return pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n"


def stack_global(module: str, name: str) -> bytes:
    return sbu(module) + sbu(name) + pickle.STACK_GLOBAL


def call1(func: bytes, arg: bytes) -> bytes:
    """func(arg) with REDUCE."""
    return func + arg + pickle.TUPLE1 + pickle.REDUCE


def frame(body: bytes, length: int | None = None) -> bytes:
    return pickle.FRAME + struct.pack("<Q", len(body) if length is None else length) + body


def echo(slug: str) -> str:
    return f"echo {MARKER}-{slug}"


def system_call(slug: str, *, proto_n: int = 2) -> bytes:
    """The classic: os.system('echo ...') through GLOBAL + REDUCE."""
    head = proto(proto_n) if proto_n >= 2 else b""
    return head + call1(glob("os", "system"), binunicode(echo(slug))) + pickle.STOP
