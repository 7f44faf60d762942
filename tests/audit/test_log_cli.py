"""`pipewarden audit ...` as a user runs it (real child processes), on SQLite and PostgreSQL.

Exit codes: 0 intact / done, 1 a failed check (a tampered log, a proof that does not hold), 2 usage or
configuration error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from pipewarden.db import Database, audit_records
from pipewarden.events import Event
from pipewarden.workspace import Workspace
from tests.audit.test_log import event
from tests.audit.test_log_tamper import records, unguarded

CLI = [sys.executable, "-m", "pipewarden.cli"]


def run(*args: str | Path, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PIPEWARDEN_DATABASE_URL": url, "PIPEWARDEN_WORKSPACE": str(cwd / "ws")},
        timeout=120,
    )


@pytest.fixture
def ws(database: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", database_url)
    workspace = Workspace.init(tmp_path / "ws")
    log = workspace.audit_log()
    events = [event(i) for i in range(12)]
    log.append_many(events)
    log.close()
    workspace.database().dispose()
    return events


def test_verify_says_intact_then_names_the_first_bad_record(
    ws: list[Event], database: Database, database_url: str, tmp_path: Path
) -> None:
    ok = run("audit", "verify", cwd=tmp_path, url=database_url)
    assert ok.returncode == 0, ok.stderr
    assert ": 12 records, 1 stored checkpoints, 2 exported checkpoint files checked" in ok.stdout
    assert "intact (head " in ok.stdout
    with unguarded(database) as conn:
        body = records(conn)[4].body.replace(b"churn", b"fraud")
        conn.execute(update(audit_records).where(audit_records.c.seq == 5).values(body=body))
    bad = run("audit", "verify", cwd=tmp_path, url=database_url)
    assert bad.returncode == 1
    assert "checked 4 records" in bad.stdout
    assert "record 5: modified: its contents no longer match its hash" in bad.stderr
    missing = run("audit", "verify", "--checkpoint", tmp_path / "nope.json", cwd=tmp_path, url=database_url)
    assert missing.returncode == 2 and "nope.json: checkpoint file does not exist" in missing.stderr


def test_verify_checks_an_exported_checkpoint_given_explicitly(
    ws: list[Event], database_url: str, tmp_path: Path
) -> None:
    exported = tmp_path / "ws" / "audit" / "checkpoints" / "000000000012.json"
    kept = tmp_path / "kept.json"
    kept.write_bytes(exported.read_bytes())
    ok = run("audit", "verify", "--checkpoint", kept, cwd=tmp_path, url=database_url)
    assert ok.returncode == 0, ok.stderr
    assert "3 exported checkpoint files checked" in ok.stdout
    kept.write_bytes(kept.read_bytes().replace(b'"sig": "', b'"sig": "AAAA'))
    bad = run("audit", "verify", "--checkpoint", kept, cwd=tmp_path, url=database_url)
    assert bad.returncode == 1 and "kept.json" in bad.stderr


def test_tail_shows_the_newest_records(ws: list[Event], database_url: str, tmp_path: Path) -> None:
    text = run("audit", "tail", "-n", "2", cwd=tmp_path, url=database_url)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert (
        len(lines) == 2
        and lines[0].split()[0] == "11"
        and lines[1].endswith("artifact.read  artifact:churn@11")
    )
    # Reading the log is itself an action in it: the first tail is record 13.
    as_json = run("audit", "tail", "-n", "4", "--json", cwd=tmp_path, url=database_url)
    docs = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [d["seq"] for d in docs] == [10, 11, 12, 13]
    assert [Event.from_json(json.dumps(d["event"])) for d in docs[:3]] == ws[-3:]
    read = docs[3]["event"]
    assert (read["action"], read["resource"], read["outcome"], read["attributes"]["count"]) == (
        "audit.read",
        "audit:log",
        "allowed",
        2,
    )


def test_export_writes_json_lines_that_rehash(ws: list[Event], database_url: str, tmp_path: Path) -> None:
    from pipewarden.audit import record_hash

    out = tmp_path / "audit.jsonl"
    done = run(
        "audit", "export", "--format", "jsonl", "-o", out, "--from", "3", cwd=tmp_path, url=database_url
    )
    assert done.returncode == 0, done.stderr
    assert f"exported 10 records to {out}" in done.stdout
    raw = out.read_bytes().splitlines()
    assert len(raw) == 10
    for line in raw:
        doc = json.loads(line)
        # The body is embedded byte for byte: the hash can be recomputed from the export alone.
        body = line[line.index(b'"event":') + len(b'"event":') : -1]
        assert record_hash(doc["seq"], bytes.fromhex(doc["prev_hash"]), body).hex() == doc["hash"]
    # The export above is record 13 (an audit.export event); this one ends there.
    stdout = run("audit", "export", "--from", "12", cwd=tmp_path, url=database_url)
    exported = [json.loads(line) for line in stdout.stdout.splitlines()]
    assert [d["seq"] for d in exported] == [12, 13]
    assert exported[1]["event"]["action"] == "audit.export"
    wrong = run("audit", "export", "--format", "csv", cwd=tmp_path, url=database_url)
    assert wrong.returncode == 2 and "only 'jsonl'" in wrong.stderr


def test_proof_and_check_proof_offline(ws: list[Event], database_url: str, tmp_path: Path) -> None:
    proof = tmp_path / "proof.json"
    made = run("audit", "proof", "4", "-o", proof, cwd=tmp_path, url=database_url)
    assert made.returncode == 0, made.stderr
    assert "proof of record 4 against checkpoint 12" in made.stdout
    pub = tmp_path / "ws" / "keys" / "signing.key.pub"
    # check-proof needs no workspace and no database: only the proof and the public key.
    checked = run("audit", "check-proof", proof, "--key", pub, cwd=tmp_path, url="postgresql://nowhere/x")
    assert checked.returncode == 0, checked.stderr
    assert "record 4 is in audit log pipewarden-audit-" in checked.stdout
    assert "artifact.read by ada on artifact:churn@3, allowed" in checked.stdout
    log_id = Workspace.open(tmp_path / "ws").audit_log().log_id
    pinned = run("audit", "check-proof", proof, "--key", pub, "--log", log_id, cwd=tmp_path, url=database_url)
    assert pinned.returncode == 0, pinned.stderr
    # The same key may sign another deployment's log (a staging copy): --log refuses its proofs.
    other = run(
        "audit", "check-proof", proof, "--key", pub, "--log", "staging", cwd=tmp_path, url=database_url
    )
    assert other.returncode == 1 and "not of 'staging'" in other.stderr
    doc = json.loads(proof.read_text())
    doc["body"] = doc["body"].replace("churn@3", "churn@9")
    proof.write_text(json.dumps(doc))
    forged = run("audit", "check-proof", proof, "--key", pub, cwd=tmp_path, url=database_url)
    assert forged.returncode == 1 and "record 4's body or previous hash was changed" in forged.stderr
    nokey = run("audit", "check-proof", proof, "--key", tmp_path / "none.pem", cwd=tmp_path, url=database_url)
    assert nokey.returncode == 2
    absent = run("audit", "proof", "99", cwd=tmp_path, url=database_url)
    assert absent.returncode == 2 and "audit record 99: no such record" in absent.stderr


def test_every_command_leaves_its_records_under_a_signed_checkpoint(
    database: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command is a short process: at exit it signs a checkpoint over what it recorded, so nobody
    with write access to the database can quietly change or cut those records afterwards."""
    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", database_url)
    Workspace.init(tmp_path / "ws")
    for _ in range(2):
        assert run("audit", "tail", cwd=tmp_path, url=database_url).returncode == 0
    exported = sorted(int(p.stem) for p in (tmp_path / "ws" / "audit" / "checkpoints").glob("[0-9]*.json"))
    assert exported == [1, 2]
