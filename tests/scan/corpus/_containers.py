"""Malicious containers and model formats (and the builders benign cases reuse)."""

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
from pathlib import Path

from tests.scan._asm import (
    system_call,
)

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


def keras_v3_bytes(*, custom: bool) -> bytes:
    """A .keras archive whose config has a Lambda layer (or a class from module os)."""
    if custom:
        layer: dict[str, object] = {
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
                    "config": {"code": "lambda x: __import__('os').system('echo PWNED-keras')"},
                },
            },
        }
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
        "config": {"name": "model", "layers": [layer]},
    }
    return _zip_of(
        {"config.json": json.dumps(config).encode(), "metadata.json": b'{"keras_version": "3.6.0"}'}
    )


def _keras_v3(custom: bool) -> Callable[[Path], Path]:
    def build(dest: Path) -> Path:
        path = dest / "model.keras"
        path.write_bytes(keras_v3_bytes(custom=custom))
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
