"""The audit log on SQLite and a real PostgreSQL server: append, read back, export, prove, checkpoints."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from pipewarden.audit import AuditLog, Checkpoint, database_log_id, root, verify_proof
from pipewarden.crypto import SigningKey, TrustedKeys
from pipewarden.db import Database, audit_checkpoints, audit_records
from pipewarden.errors import ConfigError, IntegrityError
from pipewarden.events import Event, Events
from pipewarden.workspace import Workspace

KEY = SigningKey.generate()
TRUSTED = TrustedKeys([KEY.public], source="test key")


def event(i: int, *, actor: str = "ada") -> Event:
    return Event(
        action="artifact.read",
        actor=actor,
        resource=f"artifact:churn@{i}",
        outcome="allowed" if i % 7 else "denied",
        origin="10.0.0.7",
        attributes={"n": i, "stage": "train"},
    )


def open_log(database: Database, tmp_path: Path, **kwargs: Any) -> AuditLog:
    options: dict[str, Any] = {"checkpoint_dir": tmp_path / "checkpoints", "log_id": "test-log"}
    options.update(kwargs)
    return AuditLog(database, signing_key=KEY, trusted=TRUSTED, **options)


def stored_checkpoints(database: Database) -> list[int]:
    with database.transaction(write=False) as conn:
        return [r[0] for r in conn.execute(audit_checkpoints.select().order_by(audit_checkpoints.c.size))]


def test_append_read_export_and_prove_round_trip(database: Database, tmp_path: Path) -> None:
    log = open_log(database, tmp_path)
    events = [event(i) for i in range(25)]
    assert [log.append(e) for e in events[:5]] == [1, 2, 3, 4, 5]
    assert log.append_many(events[5:]) == list(range(6, 26))
    assert log.append_many([]) == []

    entries = list(log.records())
    assert [e.seq for e in entries] == list(range(1, 26))
    assert [e.event for e in entries] == events
    assert [e.seq for e in log.records(start=10, end=12)] == [10, 11, 12]
    assert [e.event for e in log.tail(3)] == events[-3:]

    out = io.BytesIO()
    assert log.export_jsonl(out, start=24) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["seq"], Event.from_json(json.dumps(d["event"]))) for d in lines] == [
        (24, events[23]),
        (25, events[24]),
    ]
    assert lines[1]["prev_hash"] == lines[0]["hash"] == entries[23].hash.hex()

    proof = log.proof(13)  # no checkpoint yet: one is signed for it
    verdict = verify_proof(json.dumps(proof), TRUSTED)
    assert (verdict.seq, verdict.tree_size, verdict.event, verdict.log) == (13, 25, events[12], "test-log")
    assert stored_checkpoints(database) == [25]
    result = log.verify()
    assert result.ok, result.problem
    assert (result.records, result.checkpoints, result.newest_exported_size) == (25, 1, 25)
    assert result.head == entries[-1].hash


def test_every_position_of_small_logs_is_provable(database: Database, tmp_path: Path) -> None:
    log = open_log(database, tmp_path, checkpoint_dir=None)
    for size in range(1, 18):
        log.append(event(size))
        log.checkpoint()
        for seq in range(1, size + 1):
            assert verify_proof(log.proof(seq), TRUSTED).tree_size == size


def test_a_proof_that_was_altered_or_signed_by_another_key_fails(database: Database, tmp_path: Path) -> None:
    log = open_log(database, tmp_path)
    log.append_many([event(i) for i in range(9)])
    proof = log.proof(4)
    altered = json.loads(json.dumps(proof))
    altered["body"] = altered["body"].replace("allowed", "denied")
    with pytest.raises(IntegrityError, match="record 4's body or previous hash was changed"):
        verify_proof(altered, TRUSTED)
    moved = {**proof, "seq": 5, "leaf_index": 4}
    with pytest.raises(IntegrityError, match="record 5"):
        verify_proof(moved, TRUSTED)
    path = {**proof, "path": [bytes(32).hex(), *proof["path"][1:]]}
    with pytest.raises(IntegrityError, match="not in checkpoint 9"):
        verify_proof(path, TRUSTED)
    other = SigningKey.generate()
    with pytest.raises(IntegrityError, match="not among the 1 trusted key"):
        verify_proof(proof, TrustedKeys([other.public], source="other"))
    with pytest.raises(IntegrityError, match="not a pipewarden audit proof"):
        verify_proof(b'{"v": "something else"}', TRUSTED)


def test_group_commit_under_eight_threads_gives_unique_contiguous_positions(
    database: Database, tmp_path: Path
) -> None:
    log = open_log(database, tmp_path, checkpoint_every=64)
    seqs: list[list[int]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def writer(t: int) -> None:
        start.wait()
        for i in range(40):
            if i % 10 == 9:
                seqs[t].extend(log.append_many([event(1000 * t + i), event(1000 * t + i + 500)]))
            else:
                seqs[t].append(log.append(event(1000 * t + i, actor=f"thread{t}")))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    everything = sorted(s for per_thread in seqs for s in per_thread)
    assert everything == list(range(1, 8 * 44 + 1))
    for t, mine in enumerate(seqs):
        assert mine == sorted(mine), f"thread {t} saw its own appends out of order"
    # Each thread's events sit at the positions it was told.
    by_seq = {e.seq: e.event for e in log.records()}
    for t, mine in enumerate(seqs):
        assert all(by_seq[s].actor == f"thread{t}" for s in mine[:9])
    log.close()
    result = log.verify()
    assert result.ok, result.problem
    assert result.records == 352 and stored_checkpoints(database)[-1] == 352


def test_an_append_while_a_checkpoint_is_signed_still_gets_the_closing_checkpoint(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint reads the head, then signs it; an append landing in between must not be forgotten
    # when the checkpoint clears its "appended since" mark, or close() signs nothing over it.
    log = open_log(database, tmp_path, checkpoint_every=1000, checkpoint_interval=3600)
    for i in range(5):
        log.append(event(i))
    sign = Checkpoint.sign
    raced: list[int] = []

    def sign_while_another_append_lands(self: Checkpoint, key: Any) -> Any:
        if not raced:
            raced.append(log.append(event(99)))
        return sign(self, key)

    monkeypatch.setattr(Checkpoint, "sign", sign_while_another_append_lands)
    log.checkpoint()
    assert stored_checkpoints(database) == [5] and raced == [6]
    monkeypatch.setattr(Checkpoint, "sign", sign)
    log.close()
    assert stored_checkpoints(database) == [5, 6]


def test_checkpoints_every_n_records_stored_and_exported(database: Database, tmp_path: Path) -> None:
    log = open_log(database, tmp_path, checkpoint_every=10, checkpoint_interval=3600)
    for i in range(35):
        log.append(event(i))
    assert stored_checkpoints(database) == [10, 20, 30]
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.glob("0*.json")) == [
        "000000000010.json",
        "000000000020.json",
        "000000000030.json",
    ]
    log.close()
    assert stored_checkpoints(database) == [10, 20, 30, 35]
    latest = Checkpoint.open((folder / "latest.json").read_bytes(), trusted=TRUSTED, label="latest")
    hashes = [e.hash for e in log.records()]
    assert (latest.size, latest.root, latest.log) == (35, root(hashes), "test-log")
    log.close()  # nothing appended since: no new checkpoint
    assert stored_checkpoints(database) == [10, 20, 30, 35]
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_batch_crossing_the_cadence_gets_one_checkpoint_at_its_end(
    database: Database, tmp_path: Path
) -> None:
    log = open_log(database, tmp_path, checkpoint_every=10, checkpoint_interval=3600)
    log.append_many([event(i) for i in range(25)])
    assert stored_checkpoints(database) == [25]


def test_checkpoints_by_time_when_records_are_few(database: Database, tmp_path: Path) -> None:
    # An interval shorter than any transaction: every append finds a checkpoint due.
    log = open_log(database, tmp_path, checkpoint_every=1000, checkpoint_interval=1e-9)
    for i in range(4):
        log.append(event(i))
    assert stored_checkpoints(database) == [1, 2, 3, 4]


def test_checkpoints_cover_what_other_writers_appended(database: Database, tmp_path: Path) -> None:
    # Two logs over one database stand for two processes: each frontier must take in the other's records.
    first = open_log(database, tmp_path, checkpoint_every=5, checkpoint_interval=3600)
    second = open_log(database, tmp_path, checkpoint_every=5, checkpoint_interval=3600)
    for i in range(23):
        (first if i % 3 else second).append(event(i))
    first.close()
    second.close()
    hashes = [e.hash for e in first.records()]
    with database.transaction(write=False) as conn:
        rows = conn.execute(audit_checkpoints.select()).all()
    assert rows and all(r.root == root(hashes[: r.size]) for r in rows)
    assert first.verify().ok and second.verify().ok


def test_a_checkpoint_is_never_signed_over_a_broken_chain(database: Database, tmp_path: Path) -> None:
    log = open_log(database, tmp_path, checkpoint_every=1000)
    log.append_many([event(i) for i in range(6)])
    with database.engine.begin() as conn:
        # A record slipped in at the end whose hash does not chain (triggers refuse only UPDATE/DELETE).
        conn.execute(
            audit_records.insert(), {"seq": 7, "prev_hash": bytes(32), "body": b"{}", "hash": bytes(32)}
        )
    fresh = open_log(database, tmp_path, checkpoint_every=1000)  # a process that has not seen the records
    with pytest.raises(IntegrityError, match="record 7: modified"):
        fresh.checkpoint()
    assert stored_checkpoints(database) == []
    # Appending still works (the event is kept); verification names the bad record.
    assert fresh.append(event(99)) == 8
    problem = fresh.verify().problem
    assert problem is not None and (problem.seq, problem.kind) == (7, "modified")


def test_events_emitted_through_the_one_path_land_in_the_log(database: Database, tmp_path: Path) -> None:
    log = open_log(database, tmp_path)
    seen: list[Event] = []
    events = Events(log, subscribers=(seen.append,))
    sent = event(1)
    assert events.emit(sent) == 1
    assert [e.event for e in log.records()] == seen == [sent]


def test_bad_settings_are_refused(database: Database, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log id"):
        open_log(database, tmp_path, log_id=" ")
    with pytest.raises(ConfigError, match="checkpoint_every 0"):
        open_log(database, tmp_path, checkpoint_every=0)
    with pytest.raises(ConfigError, match="checkpoint_interval"):
        open_log(database, tmp_path, checkpoint_interval=0)
    other = SigningKey.generate()
    with pytest.raises(ConfigError, match="not among the keys trusted"):
        AuditLog(database, signing_key=other, trusted=TRUSTED, log_id="x", checkpoint_dir=None)
    log = open_log(database, tmp_path)
    with pytest.raises(ConfigError, match="audit record 3: no such record"):
        log.proof(3)
    assert log.checkpoint() is None and log.tail(5) == []


def test_the_workspace_log_is_one_per_workspace_with_a_stable_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPEWARDEN_DATABASE_URL", raising=False)
    ws = Workspace.init(tmp_path / "ws")
    log = ws.audit_log()
    assert ws.audit_log() is log
    assert log.append(event(1)) == 1
    log.close()
    again = Workspace.open(tmp_path / "ws").audit_log()
    assert again.log_id == log.log_id and again.log_id.startswith("pipewarden-audit-")
    assert again.log_id == database_log_id(again.db)  # kept in the database, not in a file
    assert not (tmp_path / "ws" / "audit" / "log-id").exists()
    assert (tmp_path / "ws" / "audit").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "ws" / "audit" / "checkpoints" / "000000000001.json").is_file()
    result = again.verify()
    assert result.ok and result.newest_exported_size == 1
