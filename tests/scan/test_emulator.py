"""Unit tests of the pickle emulator's semantics, one behaviour each."""

from __future__ import annotations

import pickle
import struct

import pytest

from pipewarden.findings import Report, Severity
from pipewarden.scan import ScanLimits, scan_bytes
from tests.scan._asm import binunicode, call1, frame, glob, proto, sbu, stack_global

P = pickle


def rules(report: Report) -> set[str]:
    return {f.rule_id for f in report.findings}


def test_allowlisted_globals_pass_in_every_protocol() -> None:
    import collections
    import datetime

    data = {"od": collections.OrderedDict(a=1), "when": datetime.datetime(2024, 1, 1), "c": 1j}
    for protocol in range(6):
        assert scan_bytes(pickle.dumps(data, protocol=protocol)).findings == ()


def test_unknown_global_is_high_and_names_itself() -> None:
    data = proto(2) + glob("mypkg.models", "Net") + P.EMPTY_TUPLE + P.REDUCE + P.STOP
    report = scan_bytes(data)
    (finding,) = report.findings
    assert finding.rule_id == "PW-SCAN-102"
    assert finding.severity is Severity.HIGH
    assert finding.evidence["global"] == "mypkg.models.Net"
    assert "mypkg.models.Net" in finding.message


def test_dangerous_global_is_critical_with_call_evidence() -> None:
    data = proto(2) + call1(glob("os", "system"), binunicode("echo hi")) + P.STOP
    (finding,) = scan_bytes(data).findings
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["calls"] == ["REDUCE ('echo hi',)"]
    assert "CWE-502" in finding.references and "AML.T0011.000" in finding.references


def test_global_referenced_but_never_called_is_still_flagged() -> None:
    # Importing the module is itself a side effect of find_class.
    data = proto(2) + glob("os", "system") + P.POP + P.NONE + P.STOP
    assert rules(scan_bytes(data)) == {"PW-SCAN-101"}


def test_memo_holds_values_not_neighbours() -> None:
    data = (
        proto(2)
        + glob("os", "system")
        + P.BINPUT
        + b"\x07"
        + P.POP
        + P.MARK
        + P.NONE
        + P.NONE
        + P.TUPLE
        + P.POP
        + P.BINGET
        + b"\x07"
        + binunicode("x")
        + P.TUPLE1
        + P.REDUCE
        + P.STOP
    )
    report = scan_bytes(data)
    (finding,) = report.findings
    assert finding.evidence["calls"] == ["REDUCE ('x',)"]


def test_long_binput_and_get_text_opcodes() -> None:
    data = (
        glob("os", "system")
        + P.LONG_BINPUT
        + struct.pack("<I", 70000)
        + P.POP
        + P.GET
        + b"70000\n"
        + P.MARK
        + P.STRING
        + b"'x'\n"
        + P.TUPLE
        + P.REDUCE
        + P.STOP
    )
    (finding,) = scan_bytes(data).findings
    assert finding.evidence["calls"] == ["REDUCE ('x',)"]


def test_missing_memo_entry_is_malformed() -> None:
    report = scan_bytes(proto(2) + P.BINGET + b"\x03" + P.STOP)
    assert rules(report) == {"PW-SCAN-109"}


def test_call_of_a_computed_callable_is_critical() -> None:
    # collections.OrderedDict() returns an object; REDUCE then calls that object.
    data = (
        proto(2)
        + glob("collections", "OrderedDict")
        + P.EMPTY_TUPLE
        + P.REDUCE
        + P.EMPTY_TUPLE
        + P.REDUCE
        + P.STOP
    )
    (finding,) = scan_bytes(data).findings
    assert finding.rule_id == "PW-SCAN-103"
    assert finding.severity is Severity.CRITICAL


def test_stack_global_from_computed_strings_is_critical() -> None:
    data = (
        proto(4)
        + stack_global("builtins", "str")
        + sbu("os")
        + P.TUPLE1
        + P.REDUCE
        + sbu("system")
        + P.STACK_GLOBAL
        + P.STOP
    )
    assert "PW-SCAN-104" in rules(scan_bytes(data))


def test_stack_global_with_non_strings_is_malformed() -> None:
    data = proto(4) + P.BININT1 + b"\x01" + P.BININT1 + b"\x02" + P.STACK_GLOBAL + P.STOP
    assert rules(scan_bytes(data)) == {"PW-SCAN-109"}


def test_fix_imports_applies_below_protocol_3_only() -> None:
    low = proto(2) + glob("__builtin__", "set") + P.EMPTY_TUPLE + P.REDUCE + P.STOP
    high = proto(3) + glob("__builtin__", "set") + P.EMPTY_TUPLE + P.REDUCE + P.STOP
    assert scan_bytes(low).findings == ()  # becomes builtins.set
    assert rules(scan_bytes(high)) == {"PW-SCAN-101"}  # a module literally named __builtin__


def test_dotted_name_is_judged_as_a_whole() -> None:
    data = proto(4) + stack_global("collections", "OrderedDict.fromkeys") + P.STOP
    report = scan_bytes(data)
    assert rules(report) == {"PW-SCAN-102"}
    assert report.findings[0].evidence["global"] == "collections.OrderedDict.fromkeys"


def test_ext_opcodes_are_critical() -> None:
    for op, arg in ((P.EXT1, b"\x01"), (P.EXT2, b"\x01\x00"), (P.EXT4, b"\x01\x00\x00\x00")):
        assert rules(scan_bytes(proto(2) + op + arg + P.STOP)) == {"PW-SCAN-105"}


def test_persistent_id_outside_torch_is_medium() -> None:
    (finding,) = scan_bytes(proto(2) + binunicode("k") + P.BINPERSID + P.STOP).findings
    assert (finding.rule_id, finding.severity) == ("PW-SCAN-107", Severity.MEDIUM)


def test_appends_on_a_global_mutates_module_state() -> None:
    data = proto(2) + glob("collections", "OrderedDict") + P.MARK + P.NONE + P.APPENDS + P.STOP
    assert rules(scan_bytes(data)) == {"PW-SCAN-106"}


def test_frame_straddling_is_reported_and_content_still_judged() -> None:
    body = call1(stack_global("os", "system"), sbu("x")) + P.STOP
    report = scan_bytes(proto(4) + frame(body, length=2))
    assert rules(report) == {"PW-SCAN-101", "PW-SCAN-108"}


def test_well_formed_frames_are_quiet() -> None:
    big = {"k" * 10: list(range(20000))}
    assert scan_bytes(pickle.dumps(big, protocol=4)).findings == ()


def test_every_pickle_in_a_stream_is_scanned() -> None:
    benign = pickle.dumps([1, 2], protocol=2)
    evil = proto(2) + call1(glob("os", "system"), binunicode("x")) + P.STOP
    assert rules(scan_bytes(benign + benign + evil)) == {"PW-SCAN-101"}


def test_trailing_non_pickle_data_is_reported() -> None:
    report = scan_bytes(pickle.dumps({"a": 1}, protocol=2) + b"\xff\xfe trailing")
    assert rules(report) == {"PW-SCAN-110"}


def test_large_byte_payloads_are_read_past() -> None:
    payload = b"\x00" * 5_000_000
    data = (
        proto(4)
        + P.BINBYTES8
        + struct.pack("<Q", len(payload))
        + payload
        + P.POP
        + glob("os", "system")
        + P.STOP
    )
    report = scan_bytes(data)
    assert rules(report) == {"PW-SCAN-101"}
    assert report.findings[0].location.offset == 2 + 9 + len(payload) + 1


def _nested(depth: int) -> tuple[object, ...]:
    # Protocol 0 writes a tuple as MARK ... TUPLE, so nesting opens MARKs.
    value: tuple[object, ...] = ()
    for _ in range(depth):
        value = (value,)
    return value


@pytest.mark.parametrize(
    ("limits", "data"),
    [
        (ScanLimits(max_opcodes=100), pickle.dumps(list(range(100_000)), protocol=0)),
        (ScanLimits(max_memo=10), pickle.dumps([str(i) for i in range(100)], protocol=4)),
        (ScanLimits(max_depth=50), pickle.dumps(_nested(200), protocol=0)),
        (ScanLimits(max_line_bytes=64), b"I" + b"1" * 1000 + b"\n."),
    ],
    ids=["opcodes", "memo", "depth", "line"],
)
def test_limits_give_high_findings_not_passes(limits: ScanLimits, data: bytes) -> None:
    report = scan_bytes(data, limits=limits)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH
    assert rules(report) & {"PW-SCAN-203", "PW-SCAN-109"}


def test_protocol_above_5_is_not_a_pickle_and_fails_closed() -> None:
    assert rules(scan_bytes(b"\x80\x06N.")) == {"PW-SCAN-201"}
    assert rules(scan_bytes(b"\x80\x02\x80\x09N.")) == {"PW-SCAN-109"}


def test_getattr_on_an_allowlisted_class_resolves_statically() -> None:
    # Protocol 4 pickles a classmethod as getattr(cls, name): pandas time zones do.
    ok = proto(4) + stack_global("builtins", "getattr") + stack_global("zoneinfo", "ZoneInfo")
    ok += (
        sbu("_unpickle")
        + P.TUPLE2
        + P.REDUCE
        + sbu("UTC")
        + P.BININT1
        + b"\x01"
        + P.TUPLE2
        + P.REDUCE
        + P.STOP
    )
    assert scan_bytes(ok).findings == ()


def test_getattr_to_an_unlisted_attribute_is_still_flagged() -> None:
    bad = proto(4) + stack_global("builtins", "getattr") + stack_global("zoneinfo", "ZoneInfo")
    bad += sbu("__init_subclass__") + P.TUPLE2 + P.REDUCE + P.STOP
    assert {"PW-SCAN-101"} <= rules(scan_bytes(bad))


def test_getattr_reused_from_the_memo_for_a_second_call_is_judged_per_call() -> None:
    data = (
        proto(4)
        + stack_global("builtins", "getattr")
        + P.MEMOIZE
        + stack_global("zoneinfo", "ZoneInfo")
        + sbu("_unpickle")
        + P.TUPLE2
        + P.REDUCE
        + P.POP
        + P.BINGET
        + b"\x00"
        + stack_global("collections", "OrderedDict")
        + sbu("fromkeys")
        + P.TUPLE2
        + P.REDUCE
        + P.STOP
    )
    assert "PW-SCAN-101" in rules(scan_bytes(data))


def test_partial_of_an_allowlisted_function_passes_only_if_build_keeps_it() -> None:
    import functools

    from sklearn.utils.validation import check_array  # type: ignore[import-untyped]

    assert scan_bytes(pickle.dumps(functools.partial(check_array, ensure_2d=False))).findings == ()
    # Same partial, but BUILD swaps its function for another (allowlisted) callable.
    swapped = (
        proto(2)
        + glob("functools", "partial")
        + glob("sklearn.utils.validation", "check_array")
        + P.TUPLE1
        + P.REDUCE
        + P.MARK
        + glob("builtins", "set")
        + P.EMPTY_TUPLE
        + P.NONE
        + P.NONE
        + P.TUPLE
        + P.BUILD
        + P.STOP
    )
    report = scan_bytes(swapped)
    assert rules(report) == {"PW-SCAN-101"}
    assert report.findings[0].evidence["global"] == "functools.partial"
