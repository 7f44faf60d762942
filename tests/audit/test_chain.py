"""The record chain: every kind of tampering is named at the first bad record; checkpoints catch the rest."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipewarden.audit import Record, record_hash, root, verify_chain


def log(n: int) -> list[Record]:
    records: list[Record] = []
    for i in range(n):
        records.append(
            Record.after(records[-1] if records else None, b'{"action":"artifact.read","n":%d}' % i)
        )
    return records


def rechain(records: list[Record], start: int = 0) -> list[Record]:
    """What an attacker with write access does to hide a change: recompute every hash after it."""
    out = records[:start]
    for rec in records[start:]:
        out.append(Record.after(out[-1] if out else None, rec.body))
    return out


def head(records: list[Record], size: int) -> bytes:
    return root([r.hash for r in records[:size]])


def test_an_intact_log_verifies() -> None:
    records = log(50)
    report = verify_chain(records, checkpoint_size=40, checkpoint_root=head(records, 40))
    assert report.problem is None and report.checked == 50
    assert verify_chain([]).problem is None


def test_a_modified_body_is_named() -> None:
    records = log(20)
    records[7] = replace(records[7], body=records[7].body.replace(b"read", b"write"))
    problem = verify_chain(records).problem
    assert problem is not None and (problem.seq, problem.kind) == (8, "modified")


def test_a_modified_body_with_its_hash_recomputed_is_named() -> None:
    records = log(20)
    r = records[7]
    body = r.body.replace(b"read", b"write")
    records[7] = replace(r, body=body, hash=record_hash(r.seq, r.prev_hash, body))
    problem = verify_chain(records).problem
    assert problem is not None and (problem.seq, problem.kind) == (8, "modified")


def test_a_deleted_record_is_named_with_or_without_renumbering() -> None:
    records = log(20)
    problem = verify_chain(records[:5] + records[6:]).problem
    assert problem is not None and (problem.seq, problem.kind) == (6, "deleted")
    renumbered = records[:5] + [replace(r, seq=r.seq - 1) for r in records[6:]]
    problem = verify_chain(renumbered).problem
    assert problem is not None and (problem.seq, problem.kind) == (6, "deleted")


def test_an_inserted_record_is_named() -> None:
    records = log(20)
    forged = Record.after(records[4], b'{"action":"role.grant"}')
    problem = verify_chain([*records[:5], forged, *records[5:]]).problem
    assert problem is not None and problem.kind == "inserted" and problem.seq == 6
    shifted = [*records[:5], forged, *[replace(r, seq=r.seq + 1) for r in records[5:]]]
    problem = verify_chain(shifted).problem
    assert problem is not None and problem.kind in {"inserted", "modified"}


def test_reordered_records_are_named() -> None:
    records = log(20)
    a, b = records[3], records[12]
    swapped = list(records)
    swapped[3], swapped[12] = replace(b, seq=4), replace(a, seq=13)
    problem = verify_chain(swapped).problem
    assert problem is not None and (problem.seq, problem.kind) == (4, "reordered")
    assert "written as record 13" in problem.detail


def test_truncation_and_a_consistent_rewrite_are_caught_by_the_checkpoint() -> None:
    records = log(30)
    checkpoint = head(records, 30)
    problem = verify_chain(records[:25], checkpoint_size=30, checkpoint_root=checkpoint).problem
    assert problem is not None and (problem.seq, problem.kind) == (26, "truncated")
    assert verify_chain(records[:25]).problem is None  # without the checkpoint, nothing shows
    doctored = list(records)
    doctored[10] = replace(doctored[10], body=b'{"action":"artifact.read","n":"nothing to see"}')
    rewritten = rechain(doctored, start=10)
    assert verify_chain(rewritten).problem is None  # consistent in itself
    problem = verify_chain(rewritten, checkpoint_size=30, checkpoint_root=checkpoint).problem
    assert problem is not None and problem.kind == "rewritten"


@pytest.mark.parametrize("position", [0, 1, 10, 19])
def test_any_single_flipped_hash_byte_is_caught(position: int) -> None:
    records = log(20)
    r = records[position]
    records[position] = replace(r, hash=bytes([r.hash[0] ^ 1]) + r.hash[1:])
    problem = verify_chain(records).problem
    assert problem is not None and problem.seq in {position + 1, position + 2}
