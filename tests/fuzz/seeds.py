"""Seed inputs for the scanner's fuzz harness and property tests, built in code.

Nothing here is a committed binary: every seed is assembled at run time from
opcodes, the standard library's writers or hand-written headers, so the corpus
follows the formats as the code below spells them out. Every malicious payload
only echoes a marker; the scanner must never run it anyway.

`TARGETS` maps a fuzz target name to its seeds and to a `frame` function that
turns arbitrary bytes into something the target's reader is guaranteed to be
handed (it adds the format's magic when the bytes lack it), so mutated inputs
keep reaching that reader instead of being skipped as "unknown format".
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DICTIONARY",
    "MALICIOUS_REDUCE",
    "TARGETS",
    "Target",
    "benign_pickles",
    "pb_field",
    "warmup_inputs",
]

# -- pickles -----------------------------------------------------------------

_ECHO = b"echo PWNED-fuzz"


def _binunicode(data: bytes) -> bytes:
    return b"X" + struct.pack("<I", len(data)) + data


def _sbu(data: bytes) -> bytes:
    return b"\x8c" + bytes([len(data)]) + data


# Classic code execution through GLOBAL + REDUCE (CWE-502), in the spellings
# published exploits use. Each entry: (pickle, length of the prefix that ends
# with the REDUCE opcode, the global the scanner must report). A real
# unpickler runs the call as soon as it reaches that REDUCE, whatever follows.
MALICIOUS_REDUCE: tuple[tuple[bytes, int, str], ...] = tuple(
    (data, data.rindex(b"R.") + 1, qualified)
    for data, qualified in (
        # protocol 2, GLOBAL os.system, BINUNICODE argument, TUPLE1, REDUCE
        (b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R.", "os.system"),
        # protocol 0: the same call with a MARK/TUPLE argument and a quoted STRING
        (b"cos\nsystem\n(S'" + _ECHO + b"'\ntR.", "os.system"),
        # posix is what os.system pickles as on Linux
        (b"\x80\x02cposix\nsystem\n" + _binunicode(_ECHO) + b"\x85R.", "posix.system"),
        # protocol-2 name mapping: __builtin__ becomes builtins (fix_imports)
        (b"\x80\x02c__builtin__\neval\n" + _binunicode(b"print(1)") + b"\x85R.", "builtins.eval"),
        # subprocess.Popen with a list argument
        (
            b"\x80\x03csubprocess\nPopen\n]" + _binunicode(b"echo") + b"a\x85R.",
            "subprocess.Popen",
        ),
        # protocol 4: STACK_GLOBAL from two SHORT_BINUNICODE strings
        (
            b"\x80\x04" + _sbu(b"builtins") + _sbu(b"exec") + b"\x93" + _sbu(b"print(1)") + b"\x85R.",
            "builtins.exec",
        ),
        # memo indirection: the callable is stored, popped, then fetched with BINGET
        (
            b"\x80\x02cos\nsystem\nq\x000h\x00" + _binunicode(_ECHO) + b"\x85R.",
            "os.system",
        ),
    )
)


def benign_pickles() -> list[bytes]:
    """Plain data in every protocol: what a clean model's metadata looks like."""
    values: list[object] = [
        None,
        True,
        0,
        -1,
        2**70,
        1.5,
        float("inf"),
        "text",
        b"bytes",
        [1, 2, 3],
        (1, "a", None),
        {"weights": [0.1, 0.2], "name": "model", "shape": (2, 3)},
        {1, 2, 3},
        frozenset({"a"}),
        [[[]], {"k": ({"n": 1},)}],
        bytearray(b"ba"),
    ]
    return [pickle.dumps(v, protocol=p) for v in values for p in range(pickle.HIGHEST_PROTOCOL + 1)]


def _other_pickles() -> list[bytes]:
    """Opcodes the emulator handles specially: INST, OBJ, NEWOBJ_EX, BUILD, EXT, persistent ids, frames."""
    body = _sbu(b"collections") + _sbu(b"OrderedDict") + b"\x93)R}\x94b."
    return [
        b"(S'" + _ECHO + b"'\nios\nsystem\n.",  # INST
        b"(cos\nsystem\nS'" + _ECHO + b"'\no.",  # OBJ
        b"\x80\x04" + _sbu(b"os") + _sbu(b"system") + b"\x93)}\x92.",  # NEWOBJ_EX
        b"\x80\x02cos\nenviron\n}U\x01aU\x01bsb.",  # BUILD/SETITEM on a module object
        b"\x80\x02\x82\x01)R.",  # EXT1
        b"\x80\x02Pfoo\n.",  # PERSID
        b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body,  # FRAME
        b"\x80\x05\x95\x02\x00\x00\x00\x00\x00\x00\x00N.",  # frame shorter than its contents
        b"\x80\x02N.\x80\x02N.trailing",  # two pickles and trailing data
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2),  # legacy torch
    ]


def _joblib_like() -> bytes:
    """A joblib NumpyArrayWrapper followed by its raw array bytes (joblib's inline arrays)."""
    state = (
        b"}("
        + _sbu(b"shape")
        + b"K\x02\x85"
        + _sbu(b"dtype")
        + b"cnumpy\ndtype\n"
        + _sbu(b"f8")
        + b"\x85R"
        + _sbu(b"order")
        + _sbu(b"C")
        + b"u"
    )
    wrapper = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81" + state + b"b"
    return wrapper + b"\x00" * 16 + b"."


PICKLES = [*benign_pickles(), *(m[0] for m in MALICIOUS_REDUCE), *_other_pickles(), _joblib_like()]


# -- containers ----------------------------------------------------------------


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, **kw: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method, **kw) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "../outside"
        tf.addfile(link)
    return buf.getvalue()


_MAL = MALICIOUS_REDUCE[0][0]
_CLEAN = pickle.dumps({"a": 1}, protocol=2)


_TORCHSCRIPT = b"def forward(x):\n    return torch.ops.evil.run(x)\n"


def _zip64_offsets(name: bytes, data: bytes) -> bytes:
    """One stored member whose central-directory offset sits in a zip64 extra field (APPNOTE 4.5.3)."""
    crc = zlib.crc32(data)
    local = b"PK\x03\x04" + struct.pack(
        "<HHHHHIIIHH", 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0
    )
    extra = struct.pack("<HHQ", 1, 8, 0)
    central = b"PK\x01\x02" + struct.pack(
        "<HHHHHHIIIHHHHHII", 45, 45, 0, 0, 0, 0, crc, len(data), len(data), len(name), len(extra), 0, 0, 0, 0,
        0xFFFFFFFF,
    )  # fmt: skip
    directory = central + name + extra
    body = local + name + data
    return (
        body + directory + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(directory), len(body), 0)
    )


def _zips() -> list[bytes]:
    torch_like = {
        "archive/data.pkl": pickle.dumps({"w": 1}, protocol=2),
        "archive/data/0": b"\x00" * 8,
        "archive/version": b"3\n",
    }
    return [
        _zip({"model.pkl": _MAL, "readme.txt": b"hi"}),
        _zip({"model.pkl": _CLEAN}, zipfile.ZIP_STORED),
        _zip({"model.pkl": _CLEAN}, zipfile.ZIP_BZIP2),
        _zip(torch_like),
        _zip(
            {**torch_like, "archive/constants.pkl": _CLEAN, "archive/code/m.py": b"torch.ops.evil.run(x)\n"}
        ),
        _zip({"config.json": b'{"class_name": "Lambda", "config": {}}', "metadata.json": b"{}"}),
        _zip({"a.npy": b"\x93NUMPY\x01\x00\x16\x00{'descr': '<f8'}      \n"}),
        _zip({"../escape.pkl": _CLEAN, "inner.zip": _zip({"x.pkl": _MAL})}),
        _zip64_offsets(b"model.pkl", _MAL),
        _CLEAN + _zip({"x.pkl": _CLEAN}),  # pickle/zip polyglot
    ]


def _tars() -> list[bytes]:
    return [
        _tar({"model.pkl": _MAL, "notes.txt": b"hi"}),
        _tar({"sys_info": _CLEAN, "pickle": _CLEAN, "storages": pickle.dumps(0, protocol=2), "tensors": b""}),
        _tar({"dir/x.pkl": _CLEAN}, tarfile.USTAR_FORMAT),
        _tar({"g.pkl.gz": gzip.compress(_MAL)}, tarfile.GNU_FORMAT),
    ]


def _lz4(data: bytes) -> bytes | None:
    try:
        import lz4.frame
    except ImportError:
        return None
    return bytes(lz4.frame.compress(data))


def _compressed() -> list[bytes]:
    out: list[bytes] = []
    for payload in (_MAL, _CLEAN, _zip({"x.pkl": _MAL}), b"not a model"):
        out += [
            gzip.compress(payload, mtime=0),
            bz2.compress(payload),
            lzma.compress(payload),
            lzma.compress(payload, format=lzma.FORMAT_ALONE),
            zlib.compress(payload),
            b"ZF" + zlib.compress(payload),
        ]
        lz = _lz4(payload)
        if lz is not None:
            out.append(lz)
    out.append(gzip.compress(gzip.compress(_MAL, mtime=0), mtime=0))
    return out


def _npy(header: str, body: bytes = b"", major: int = 1) -> bytes:
    text = header.encode("latin-1")
    text += b" " * (-(len(text) + 11 + (2 if major > 1 else 0)) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if major == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([major, 0]) + size + text + body


_RECORD = "[('a', '<i4'), ('b', '<U3', (2,))]"  # a structured dtype with a sub-array


def _npys() -> list[bytes]:
    return [
        _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", b"\x00" * 16),
        _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", _MAL),
        _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", pickle.dumps([1], protocol=3), 2),
        _npy(
            "{'descr': [('a', '<i4'), ('b', '<U3', (2,))], 'fortran_order': False, 'shape': (1,), }",
            b"\0" * 28,
            3,
        ),
        _npy("{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }", b"\x00"),  # truncated
    ]


def _safetensors(header: dict[str, object], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _safetensors_seeds() -> list[bytes]:
    ok = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "__metadata__": {"format": "pt"}}
    return [
        _safetensors(ok, b"\x00" * 8),
        _safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 99]}}, b"\x00" * 8),
        _safetensors(
            {
                "a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
                "b": {"dtype": "I8", "shape": [4], "data_offsets": [4, 8]},
            },
            b"\x00" * 8,
        ),
        _safetensors({"x": [1, 2], "__metadata__": {"k": 1}}, b""),
    ]


def _gguf_str(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _gguf(version: int, kvs: list[tuple[bytes, int, bytes]], tensors: int = 0) -> bytes:
    width = "<I" if version == 1 else "<Q"
    out = b"GGUF" + struct.pack("<I", version) + struct.pack(width, tensors) + struct.pack(width, len(kvs))
    for key, vtype, value in kvs:
        out += _gguf_str(key) + struct.pack("<I", vtype) + value
    return out


def _ggufs() -> list[bytes]:
    template = b"{{ ''.__class__.__mro__[1].__subclasses__() }}"
    scalars = [
        (b"general.architecture", 8, _gguf_str(b"llama")),
        (b"u8", 0, b"\x01"),
        (b"i32", 5, struct.pack("<i", -1)),
        (b"f32", 6, struct.pack("<f", 1.0)),
        (b"bool", 7, b"\x01"),
        (b"u64", 10, struct.pack("<Q", 7)),
        (b"f64", 12, struct.pack("<d", 2.0)),
        (b"arr.i32", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", 1, 2, 3)),
        (b"arr.str", 9, struct.pack("<IQ", 8, 2) + _gguf_str(b"a") + _gguf_str(b"b")),
        (b"arr.arr", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 0, 1) + b"\x00"),
    ]
    return [
        _gguf(3, [*scalars, (b"tokenizer.chat_template", 8, _gguf_str(template))]),
        _gguf(2, [(b"tokenizer.chat_template", 8, _gguf_str(b"{% for m in messages %}{{ m }}{% endfor %}"))]),
        _gguf(1, scalars[:3], tensors=1),
        _gguf(3, [(b"tokenizer.chat_template.x", 9, struct.pack("<IQ", 8, 1) + _gguf_str(b"{{ x "))]),
    ]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_field(number: int, value: int | bytes) -> bytes:
    """One protobuf field: a varint for an int, length-delimited for bytes."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _protobufs() -> list[bytes]:
    f = pb_field
    external = f(8, b"w") + f(14, 1) + f(13, f(1, b"location") + f(2, b"../../secret.bin"))
    node = f(3, b"y") + f(4, b"Relu") + f(7, b"")
    custom = f(4, b"Evil") + f(7, b"com.example.custom") + f(5, f(1, b"body") + f(6, f(1, node)))
    graph = f(1, node) + f(1, custom) + f(2, b"g") + f(5, external) + f(15, f(1, external))
    onnx_model = f(1, 8) + f(2, b"fuzz") + f(8, f(1, b"") + f(2, 17)) + f(7, graph)
    onnx_fn = onnx_model + f(25, f(1, b"fn") + f(7, custom) + f(9, f(1, b"x.y") + f(2, 1)))
    tf_graph = f(1, f(1, b"r") + f(2, b"ReadFile")) + f(1, f(1, b"m") + f(2, b"MatMul"))
    tf_lib = f(2, f(1, f(1, f(1, b"fn")) + f(3, f(1, b"p") + f(2, b"PyFunc"))))
    saved_model = f(1, 1) + f(2, f(2, tf_graph + tf_lib))
    keras_meta = f(1, f(3, b"root") + f(4, b"id") + f(5, b'{"class_name": "Lambda", "config": {}}'))
    return [onnx_model, onnx_fn, f(1, 7) + f(2, b"nograph"), saved_model, keras_meta]


def warmup_inputs() -> list[bytes]:
    """Formats read through optional libraries (7z, HDF5), whose first use imports a lot."""
    out: list[bytes] = []
    try:
        import py7zr

        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w") as archive:
            archive.writestr(_MAL, "model.pkl")
        out.append(buf.getvalue())
    except ImportError:
        pass
    try:
        import h5py

        buf = io.BytesIO()
        with h5py.File(buf, "w") as h5:
            h5.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
        out.append(buf.getvalue())
    except ImportError:
        pass
    return out


# Byte strings worth splicing into inputs (a libFuzzer dictionary): magic numbers,
# record signatures, extreme integers and the opcodes of a call.
DICTIONARY: tuple[bytes, ...] = (
    b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07",
    b"\x01\x00\x08\x00", b"\x01\x00\x18\x00", b"ustar\x00", b"ustar  \x00", b"././@LongLink",
    b"\x1f\x8b\x08", b"BZh9", b"\xfd7zXZ\x00", b"\x04\x22\x4d\x18", b"ZF", b"\x78\x9c",
    b"\x93NUMPY", b"'descr': '|O'", b"'shape': (", b"GGUF", b'"data_offsets"', b'"dtype"',
    b"tokenizer.chat_template", b"{{ x.__class__ }}", b"\x08\x01\x12", b"\x08\x08\x3a",
    b"\xff" * 8, b"\xff\xff\xff\x7f", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\x00" * 8,
    b"\x80\x02", b"\x80\x04\x95", b"cos\nsystem\n", b"c__builtin__\neval\n", b"\x93", b"\x85R.",
    b"(dp0\n", b"}q\x00(", b"\x8c\x08builtins", b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19",
)  # fmt: skip


# -- targets ---------------------------------------------------------------------


def _ensure(magic: bytes) -> Callable[[bytes], bytes]:
    def frame(data: bytes) -> bytes:
        return data if data.startswith(magic) else magic + data

    return frame


def _frame_zip(data: bytes) -> bytes:
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or b"PK\x05\x06" in data[-(22 + 0xFFFF) :]:
        return data
    # Read the bytes as a central directory: append an end record that points at them.
    count = max(1, data.count(b"PK\x01\x02")) & 0xFFFF
    return data + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(data), 0, 0)


def _frame_tar(data: bytes) -> bytes:
    block = bytearray(data.ljust(512, b"\x00"))
    if block[257:262] != b"ustar":
        block[257:262] = b"ustar"
    return bytes(block)


_COMPRESSED_MAGICS = (
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"\x04\x22\x4d\x18",
    b"ZF",
    b"\x78",
    b"\x5d\x00\x00",
)


def _frame_compressed(data: bytes) -> bytes:
    return data if data.startswith(_COMPRESSED_MAGICS) else b"\x1f\x8b" + data


def _frame_safetensors(data: bytes) -> bytes:
    if len(data) >= 9 and data[8:9] == b"{" and 2 <= struct.unpack("<Q", data[:8])[0] <= len(data) - 8:
        return data
    body = data if data.startswith(b"{") else b"{" + data
    return struct.pack("<Q", len(body)) + body


def _frame_protobuf(data: bytes) -> bytes:
    if len(data) >= 4 and (
        (data[0] == 0x08 and 3 <= data[1] <= 15 and data[2] in (0x12, 0x1A, 0x22, 0x3A, 0x42))
        or data[:3] == b"\x08\x01\x12"
        or (data[:1] == b"\x0a" and b'"class_name"' in data[:4096])
    ):
        return data
    # An ONNX model (IR version 8) whose graph field holds the bytes.
    return b"\x08\x08" + pb_field(7, data)


@dataclass(frozen=True)
class Target:
    name: str
    frame: Callable[[bytes], bytes]
    seeds: Callable[[], list[bytes]]
    filename: str  # the name the input is scanned under


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("pickle", lambda d: d, lambda: list(PICKLES), "model.pkl"),
        Target("zip", _frame_zip, _zips, "model.zip"),
        Target("tar", _frame_tar, _tars, "model.tar"),
        Target("compressed", _frame_compressed, _compressed, "model.gz"),
        Target("npy", _ensure(b"\x93NUMPY"), _npys, "array.npy"),
        Target("safetensors", _frame_safetensors, _safetensors_seeds, "model.safetensors"),
        Target("gguf", _ensure(b"GGUF"), _ggufs, "model.gguf"),
        Target("protobuf", _frame_protobuf, _protobufs, "model.onnx"),
    )
}
