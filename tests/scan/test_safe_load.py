"""safe_load: scans, refuses what is flagged, loads the very bytes it scanned."""

from __future__ import annotations

import collections
import gzip
import pickle
from pathlib import Path

import pytest

from pipewarden.errors import SafeLoadError, ScanInputError, UnsafeModelError
from pipewarden.findings import Severity
from pipewarden.scan import ScanPolicy, safe_load
from tests.scan._asm import MARKER, glob, proto, system_call

P = pickle


def test_loads_plain_data(tmp_path: Path) -> None:
    value = {"a": [1, 2.5], "od": collections.OrderedDict(x=1), "s": {1, 2}}
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(value, protocol=4))
    assert safe_load(path) == value


def test_loads_a_compressed_pickle(tmp_path: Path) -> None:
    path = tmp_path / "data.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps([1, 2, 3])))
    assert safe_load(path) == [1, 2, 3]


def test_refuses_a_malicious_pickle_without_running_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(system_call("safe-load"))
    with pytest.raises(UnsafeModelError) as info:
        safe_load(path)
    assert str(path) in str(info.value)
    assert info.value.report.max_severity is Severity.CRITICAL
    assert MARKER not in capfd.readouterr().out


def test_refuses_an_unknown_global_at_the_default_threshold(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(proto(2) + glob("mypkg", "Net") + P.EMPTY_TUPLE + P.REDUCE + P.STOP)
    with pytest.raises(UnsafeModelError, match=r"mypkg\.Net"):
        safe_load(path)


def test_restricted_unpickler_enforces_the_allowlist_at_load_time(tmp_path: Path) -> None:
    # A global allowed by a threshold of "critical" (it is only "high": unknown)
    # still cannot be loaded: the load-time check uses the same allowlist.
    path = tmp_path / "model.pkl"
    path.write_bytes(proto(2) + glob("statistics", "mean") + P.EMPTY_LIST + P.TUPLE1 + P.REDUCE + P.STOP)
    with pytest.raises(UnsafeModelError, match="refused at load time"):
        safe_load(path, threshold=Severity.CRITICAL)


def test_policy_additions_apply_to_scan_and_load(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "allow:\n  - global: fractions.Fraction\n    reason: exact ratios in our configs\n"
    )
    from fractions import Fraction

    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(Fraction(1, 3)))
    assert safe_load(path, policy=ScanPolicy.from_file(policy_file)) == Fraction(1, 3)


def test_other_formats_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    import json
    import struct

    raw = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    with pytest.raises(SafeLoadError, match="safe_load loads pickle, joblib and PyTorch files"):
        safe_load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScanInputError, match=r"absent\.pkl"):
        safe_load(tmp_path / "absent.pkl")


def test_torch_checkpoint_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state = torch.nn.Linear(3, 2).state_dict()
    path = tmp_path / "model.pt"
    torch.save(state, path)
    loaded = safe_load(path)
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_joblib_round_trip(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    value = {"w": np.arange(10.0), "b": np.ones((2, 2), dtype=np.int32)}
    for compress in (0, 3):
        path = tmp_path / f"m{compress}.joblib"
        joblib.dump(value, path, compress=compress)
        loaded = safe_load(path)
        assert np.array_equal(loaded["w"], value["w"]) and np.array_equal(loaded["b"], value["b"])


def test_malicious_torch_file_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from tests.scan.corpus import _torch_payload, _torch_zip

    path = tmp_path / "model.pt"
    path.write_bytes(_torch_zip(_torch_payload("torch-safe-load")))
    with pytest.raises(UnsafeModelError):
        safe_load(path)
    assert MARKER not in capfd.readouterr().out
