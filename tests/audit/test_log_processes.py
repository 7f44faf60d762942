"""Several processes appending to one log, and a writer killed with SIGKILL mid-run, on both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from pipewarden.db import Database, audit_intake
from tests.audit.test_log import KEY, open_log

WRITER = Path(__file__).with_name("crash_writer.py")


def start_writer(url: str, tmp_path: Path, *, tag: str, count: int, threads: int) -> subprocess.Popen[str]:
    key = tmp_path / "writer.key"
    if not key.exists():
        KEY.save(key)
    return subprocess.Popen(
        [
            sys.executable,
            str(WRITER),
            "--url",
            url,
            "--key",
            str(key),
            "--checkpoints",
            str(tmp_path / "checkpoints"),
            "--tag",
            tag,
            "--threads",
            str(threads),
            "--count",
            str(count),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_promises(database: Database, tmp_path: Path, lines: list[str]) -> int:
    """Every printed position holds the event the writer printed it for; the whole log verifies."""
    log = open_log(database, tmp_path)
    promised = {}
    for line in lines:
        seq, tag, thread, n = line.split()
        assert int(seq) not in promised, f"position {seq} was handed out twice"
        promised[int(seq)] = (tag, int(thread), int(n))
    result = log.verify()  # chains first what a killed writer left in the intake
    assert result.ok, result.problem
    found = {
        e.seq: (e.event.actor, e.event.attributes["thread"], e.event.attributes["n"]) for e in log.records()
    }
    missing = sorted(set(promised) - set(found))
    assert not missing, f"records {missing[:10]} were promised but are not in the log"
    assert all(found[seq] == promised[seq] for seq in promised)
    assert sorted(found) == list(range(1, len(found) + 1))
    assert len(set(found.values())) == len(found), "an event was chained twice"
    with database.transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(audit_intake)).scalar_one() == 0
    return len(found)


def test_several_processes_append_to_one_log(database: Database, database_url: str, tmp_path: Path) -> None:
    writers = [start_writer(database_url, tmp_path, tag=f"proc{i}", count=30, threads=2) for i in range(4)]
    lines: list[str] = []
    for proc in writers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        lines.extend(out.splitlines())
    assert len(lines) >= 4 * 2 * 30
    assert check_promises(database, tmp_path, lines) == len(lines)
    assert {line.split()[1] for line in lines} == {"proc0", "proc1", "proc2", "proc3"}


def test_a_writer_killed_mid_run_loses_nothing_it_promised(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    proc = start_writer(database_url, tmp_path, tag="doomed", count=0, threads=4)
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 400:
        line = proc.stdout.readline()
        assert line, f"the writer stopped early: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line)
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    lines.extend(line for line in rest.splitlines() if line.count(" ") == 3)  # a torn last line is no promise
    assert check_promises(database, tmp_path, lines) >= len(lines)
