"""Format readers: content-based recognition, and malformed input that fails closed."""

from __future__ import annotations

import io
import json
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from pipewarden.findings import Report, Severity
from pipewarden.scan import ScanLimits, scan_bytes, scan_path
from tests.scan._asm import system_call
from tests.scan.corpus import _zip_of


def rules(report: Report) -> set[str]:
    return {f.rule_id for f in report.findings}


def test_empty_file_named_directly_is_high(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"")
    report = scan_path(path)
    assert rules(report) == {"PW-SCAN-202"}
    assert report.exit_code(Severity.MEDIUM) == 1


def test_unknown_content_named_directly_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\x01\x02\x03 not a model")
    assert rules(scan_path(path)) == {"PW-SCAN-201"}


def test_unknown_content_in_a_folder_is_info_unless_named_like_a_model(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# hello\n")
    (tmp_path / "weights.bin").write_bytes(b"\x01\x02\x03\x04")
    report = scan_path(tmp_path)
    by_member = {Path(f.location.path).name: f for f in report.findings}
    assert by_member["README.md"].severity is Severity.INFO
    assert by_member["weights.bin"].rule_id == "PW-SCAN-201"
    assert report.targets == 2


def test_missing_path_raises_input_error(tmp_path: Path) -> None:
    from pipewarden.errors import ScanInputError

    with pytest.raises(ScanInputError, match="no such file"):
        scan_path(tmp_path / "absent.pkl")


def test_broken_symlink_is_reported(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").symlink_to(tmp_path / "gone.pkl")
    assert rules(scan_path(tmp_path)) == {"PW-SCAN-208"}


def test_truncated_zip_is_malformed() -> None:
    data = _zip_of({"a/data.pkl": pickle.dumps(1)})
    report = scan_bytes(data[: len(data) - 30])
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH


def test_zip_bomb_member_is_stopped() -> None:
    data = _zip_of({"big.bin": b"\x00" * (50 << 20)})
    report = scan_bytes(data, limits=ScanLimits(max_compression_ratio=100))
    assert "PW-SCAN-206" in rules(report)


def test_decompressed_total_limit() -> None:
    data = _zip_of({f"m{i}.pkl": pickle.dumps(list(range(5000))) for i in range(20)})
    report = scan_bytes(data, limits=ScanLimits(max_decompressed_bytes=50_000))
    assert "PW-SCAN-203" in rules(report)


def test_archive_depth_limit() -> None:
    data = system_call("deep")
    for i in range(6):
        data = _zip_of({f"layer{i}.zip" if i else "model.pkl": data})
    report = scan_bytes(data, limits=ScanLimits(max_archive_depth=3))
    assert "PW-SCAN-203" in rules(report)
    assert "PW-SCAN-101" not in rules(report)
    assert "PW-SCAN-101" in rules(scan_bytes(data))


def test_member_names_nest_with_bang() -> None:
    data = _zip_of({"outer/inner.zip": _zip_of({"m/model.pkl": system_call("x")})})
    (finding,) = [f for f in scan_bytes(data).findings if f.rule_id == "PW-SCAN-101"]
    assert finding.location.member == "outer/inner.zip!m/model.pkl"


def test_tar_symlink_and_traversal() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("weights")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        data = pickle.dumps(1)
        info = tarfile.TarInfo("../escape.pkl")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert {"PW-SCAN-204", "PW-SCAN-210"} <= rules(scan_bytes(buf.getvalue()))


def _safetensors(header: object, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_safetensors_valid_header_is_clean() -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]},
    }
    assert scan_bytes(_safetensors(header, b"\0" * 8)).findings == ()


@pytest.mark.parametrize(
    ("header", "data", "needle"),
    [
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "past the"),
        ({"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "unknown dtype"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "expected 12"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 64, "hidden data"),
        ({"__metadata__": {"k": 1}}, b"", "strings to strings"),
    ],
    ids=["out-of-range", "dtype", "size", "hole", "metadata"],
)
def test_safetensors_header_problems(header: object, data: bytes, needle: str) -> None:
    report = scan_bytes(_safetensors(header, data))
    assert "PW-SCAN-307" in rules(report)
    assert any(needle in f.message for f in report.findings)


def test_safetensors_header_not_json_is_malformed() -> None:
    bad = struct.pack("<Q", 12) + b"{not json}  " + b"\0"
    assert rules(scan_bytes(bad)) == {"PW-SCAN-202"}


def _npy(header: str, body: bytes) -> bytes:
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


def test_npy_numeric_is_clean_and_truncation_is_caught() -> None:
    good = _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 8)
    assert scan_bytes(good).findings == ()
    short = _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", b"\0" * 8)
    assert rules(scan_bytes(short)) == {"PW-SCAN-202"}


def test_npy_header_is_never_evaluated() -> None:
    evil = _npy("__import__('os').system('echo PWNED')", b"")
    assert rules(scan_bytes(evil)) == {"PW-SCAN-202"}


def test_gguf_truncated_and_bad_version() -> None:
    assert rules(scan_bytes(b"GGUF" + struct.pack("<I", 99) + b"\0" * 16)) == {"PW-SCAN-202"}
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 5) + struct.pack("<Q", 1000) + b"abc"
    assert rules(scan_bytes(header)) == {"PW-SCAN-202"}


def test_gguf_template_that_does_not_parse_is_high() -> None:
    from tests.scan.corpus import _gguf

    report = scan_bytes(_gguf("{% for x in %}"))
    assert rules(report) == {"PW-SCAN-309"}


@pytest.mark.parametrize(
    "template",
    [
        "{{ x.__class__ }}",
        "{{ x['__globals__'] }}",
        "{{ x|attr('__subclasses__') }}",
        "{{ x|attr(name) }}",
        "{{ lipsum }}",
        "{% import 'other' as o %}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    ],
)
def test_template_escapes_are_flagged(template: str) -> None:
    from tests.scan.corpus import _gguf

    assert rules(scan_bytes(_gguf(template))) == {"PW-SCAN-308"}


def test_compressed_stream_of_non_pickle_is_scanned_by_content() -> None:
    inner = _zip_of({"m/model.pkl": system_call("gz")})
    assert "PW-SCAN-101" in rules(scan_bytes(zlib.compress(inner)))


def test_corrupt_compressed_stream_is_malformed() -> None:
    data = zlib.compress(pickle.dumps(list(range(1000))))
    report = scan_bytes(data[:20] + b"\xff" * 20 + data[40:])
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH


def test_onnx_inside_folder_is_clean_and_absolute_external_data_is_flagged() -> None:
    from tests.scan.corpus import _onnx_model

    assert scan_bytes(_onnx_model(location="weights/w.bin")).findings == ()
    assert rules(scan_bytes(_onnx_model(location="/etc/shadow"))) == {"PW-SCAN-305"}


def test_torchscript_code_calling_custom_ops_is_flagged() -> None:
    code = b"def forward(self, x):\n    return ops.evil_ns.run(x)\n"
    data = _zip_of(
        {
            "m/data.pkl": pickle.dumps({}, protocol=2),
            "m/constants.pkl": pickle.dumps((), protocol=2),
            "m/code/__torch__.py": code,
        },
        zipfile.ZIP_STORED,
    )
    assert rules(scan_bytes(data)) == {"PW-SCAN-310"}


def test_keras_function_reference_outside_keras_modules_is_flagged() -> None:
    import json as _json

    layers = [
        {
            "module": "keras.layers",
            "class_name": "Dense",
            "registered_name": None,
            "config": {
                "name": "d",
                "units": 1,
                "activation": {
                    "module": "keras.utils",
                    "class_name": "function",
                    "config": "get_file",
                    "registered_name": "function",
                },
            },
        },
        {
            "module": "keras.layers",
            "class_name": "Dense",
            "registered_name": None,
            "config": {
                "name": "ok",
                "units": 1,
                "activation": {
                    "module": "keras.activations",
                    "class_name": "function",
                    "config": "relu",
                    "registered_name": "function",
                },
            },
        },
    ]
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
        "config": {"name": "m", "layers": layers},
    }
    data = _zip_of({"config.json": _json.dumps(config).encode(), "metadata.json": b"{}"})
    report = scan_bytes(data)
    (finding,) = report.at_or_above(Severity.LOW)
    assert finding.rule_id == "PW-SCAN-302"
    assert "get_file" in finding.message


def test_legacy_torch_whole_module_is_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path, _use_new_zipfile_serialization=False)
    assert scan_path(path).at_or_above(Severity.LOW) == ()


def test_pandas_named_time_zone_is_clean() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="Europe/Berlin")})
    assert scan_bytes(pickle.dumps(frame)).at_or_above(Severity.LOW) == ()


@pytest.mark.parametrize(
    "text",
    [
        b"city,population\nParis,2100000\nLyon,520000\n",  # 'c' is GLOBAL in protocol 0
        b"id,label\n1,0\n",  # 'i' is INST
        b"(note) free text\n",  # '(' is MARK
        b"S&P 500,close\n",  # 'S' is STRING
    ],
)
def test_text_data_that_starts_with_an_opcode_byte_is_not_a_pickle(tmp_path: Path, text: bytes) -> None:
    data = tmp_path / "table.csv"
    data.write_bytes(text)
    assert scan_path(data, assume_model=False).at_or_above(Severity.LOW) == ()
    assert scan_path(tmp_path).at_or_above(Severity.LOW) == ()
    # The same bytes where a model is expected cannot be checked: a finding, not a pass.
    model = tmp_path / "model.pkl"
    model.write_bytes(text)
    assert scan_path(model).max_severity is not None
    assert scan_path(model).max_severity >= Severity.HIGH  # type: ignore[operator]


def test_a_protocol_0_pickle_disguised_as_a_csv_is_still_caught(tmp_path: Path) -> None:
    # CWE-502 in protocol 0 text: GLOBAL os.system, MARK, STRING, TUPLE, REDUCE; only `echo`.
    disguised = tmp_path / "table.csv"
    disguised.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    report = scan_path(disguised, assume_model=False)
    assert report.max_severity == Severity.CRITICAL
    assert any(f.rule_id == "PW-SCAN-101" for f in report.findings)


def test_a_file_named_gguf_with_a_bad_header_is_a_finding_even_if_it_reads_as_a_pickle() -> None:
    # "GGUF" + version 0: 'G' is BINFLOAT, so the first 9 bytes and a STOP make a loadable pickle.
    data = b"GGUF" + struct.pack("<I", 0) + struct.pack("<Q", 0x2E00) + struct.pack("<Q", 0)
    as_gguf = scan_bytes(data, name="model.gguf")
    assert "PW-SCAN-202" in {f.rule_id for f in as_gguf.at_or_above(Severity.HIGH)}
    # Named as a pickle, the pickle reading decides; the trailing bytes are still reported.
    as_pickle = scan_bytes(data, name="model.pkl")
    assert "PW-SCAN-202" not in {f.rule_id for f in as_pickle.findings}
    assert "PW-SCAN-110" in {f.rule_id for f in as_pickle.findings}


@pytest.mark.parametrize("value", [256, 65535, -3, 2**40, "é", b"x", 1.5, bytearray(b"x"), frozenset({1})])
@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_plain_values_at_every_protocol_are_recognised_and_clean(value: object, protocol: int) -> None:
    assert scan_bytes(pickle.dumps(value, protocol=protocol), name="data.pkl").findings == ()


@pytest.mark.parametrize(
    "opening",
    [
        b"M\x00\x010",  # BININT2 256, POP: how pickle.dumps(256, protocol=1) starts
        b"\x80\x01",  # PROTO 1
        b"\x8c\x01x0",  # SHORT_BINUNICODE, POP
        b"\x95\x1a\x00\x00\x00\x00\x00\x00\x00",  # FRAME of the 26 bytes that follow
    ],
)
def test_a_call_behind_any_first_opcode_a_loader_accepts_is_caught(opening: bytes) -> None:
    # CWE-502: whatever opcode comes first, pickle.loads goes on to GLOBAL os.system + REDUCE (only `echo`).
    data = opening + b"cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R."
    report = scan_bytes(data, name="model.pkl")
    assert "PW-SCAN-101" in {f.rule_id for f in report.findings}
    assert scan_bytes(data, name="model.csv").max_severity == Severity.CRITICAL


def test_bytes_that_only_start_like_json_are_not_json() -> None:
    # A safetensors header that is a JSON array, 123 bytes long: the little-endian length
    # prefix starts with 0x7B, '{'. Named as a model, it is an unknown format, not "JSON".
    raw = json.dumps([False, [None, -10000, [], [False]], [], {"0": "00\U00010000", "key": "x" * 7}]).encode()
    raw = raw + b" " * (123 - len(raw))
    data = struct.pack("<Q", len(raw)) + raw
    assert data[:1] == b"{"
    report = scan_bytes(data, name="model.safetensors")
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH
    assert scan_bytes(b'{"chat_template": "{{ 1 }}"}', name="tokenizer_config.json").findings == ()
