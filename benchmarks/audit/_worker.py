"""One measured writer (or verifier) process for throughput.py: pipewarden's audit log or the baseline.

    _worker.py append --tool TOOL --url URL --threads N --batch B --count C [--wait]
    _worker.py fill --url URL --count C
    _worker.py verify --url URL

TOOL is pipewarden, baseline, or pipewarden-intake (SQLite through the intake,
for comparison). Events are made before the clock starts; turning them into JSON is part of the
measured work for both tools. With --wait the process says "ready" and starts
on a line from stdin, so several processes start together. Prints one JSON
object: seconds and events (or records).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, Table

from pipewarden.audit import AuditLog
from pipewarden.audit._intake import Chained, chain_pending
from pipewarden.crypto import SigningKey, TrustedKeys
from pipewarden.db import Database
from pipewarden.events import Event

ZERO = bytes(32)
#: The baseline: the same columns as audit_records, the position assigned by the database, no chain.
plain = Table(
    "bench_plain",
    MetaData(),
    # INTEGER on SQLite: only an INTEGER PRIMARY KEY is the rowid that numbers itself.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
)


def make_event(i: int) -> Event:
    """A typical record: a service reading a model version, with a few attributes (about 300 bytes)."""
    return Event(
        action="artifact.read",
        actor=f"svc-train-{i % 20}",
        actor_kind="service",
        resource=f"artifact:model-{i % 500}@{i % 7 + 1}",
        outcome="allowed" if i % 11 else "denied",
        origin="10.1.2.3",
        attributes={"bytes": 1_000_000 + i, "stage": "train", "request_id": f"{i:016x}"},
    )


class SqliteThroughIntake(AuditLog):
    """What SQLite would do with PostgreSQL's intake, measured to show why it does not use it.

    Each append commits its events to the intake (without waiting for the disk,
    as PostgreSQL's intake commit does not), then looks them up, and if they are
    not chained yet, chains every pending row under the write lock (with
    pipewarden's own chaining code). SQLite has no functions of its own to run
    the turns in the database, and its commits cannot overlap anyway.
    """

    def _insert(self, bodies: Any) -> tuple[list[int], Chained]:
        with self.db.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            # NORMAL: the commit does not wait for the disk (WAL checkpoints still do, so the file
            # stays sound); the chaining commit, FULL, syncs the WAL up to and past this insert.
            raw.execute("PRAGMA synchronous=NORMAL")  # outside a transaction, where SQLite allows it
            try:
                with conn.execution_options(pipewarden_write=True).begin():
                    ids = [int(raw.execute(_INTAKE, (body,)).lastrowid) for body in bodies]
            finally:
                raw.execute("PRAGMA synchronous=FULL")
        marks = ", ".join("?" * len(ids))
        look_up = f"SELECT intake_id, seq FROM audit_records WHERE intake_id IN ({marks})"  # noqa: S608  # placeholders only
        with self.db.transaction(write=False) as conn:
            found = dict(conn.exec_driver_sql(look_up, tuple(ids)).all())
        chained = Chained()
        if len(found) < len(ids):
            with self.db.transaction(write=True) as conn:
                found = dict(conn.exec_driver_sql(look_up, tuple(ids)).all())
                if len(found) < len(ids):
                    chained = chain_pending(conn.connection.dbapi_connection.cursor(), (), postgres=False)
                    found = dict(conn.exec_driver_sql(look_up, tuple(ids)).all())
        return [found[i] for i in ids], chained


_INTAKE = "INSERT INTO audit_intake (body) VALUES (?)"


def open_log(url: str, work: Path, *, intake: bool = False) -> AuditLog:
    key_path = work / "bench.key"
    key = SigningKey.load(key_path)
    return (SqliteThroughIntake if intake else AuditLog)(
        Database.open(url),
        signing_key=key,
        trusted=TrustedKeys([key.public], source=str(key_path)),
        log_id="bench",
        checkpoint_dir=work / "checkpoints",
    )


def run_append(args: argparse.Namespace) -> dict[str, Any]:
    per_thread = [[make_event(t * args.count + i) for i in range(args.count)] for t in range(args.threads)]
    if args.tool in ("pipewarden", "pipewarden-intake"):
        log = open_log(args.url, args.work, intake=args.tool == "pipewarden-intake")

        def write(events: list[Event]) -> None:
            if args.batch == 1:
                for event in events:
                    log.append(event)
            else:
                for i in range(0, len(events), args.batch):
                    log.append_many(events[i : i + args.batch])

    else:
        db = Database.open(args.url, upgrade=False)
        # The statements pipewarden's append sends: driver SQL; on SQLite one executemany, on
        # PostgreSQL one INSERT with every row of the transaction.
        insert = "INSERT INTO bench_plain (prev_hash, body, hash) VALUES "

        def write(events: list[Event]) -> None:
            for i in range(0, len(events), args.batch):
                rows = [(ZERO, e.to_json().encode(), ZERO) for e in events[i : i + args.batch]]
                with db.transaction(write=True) as conn:
                    if db.dialect == "postgresql":
                        values = ", ".join(["(%s, %s, %s)"] * len(rows))
                        conn.exec_driver_sql(insert + values, tuple(v for r in rows for v in r))
                    else:
                        conn.exec_driver_sql(insert + "(?, ?, ?)", rows)  # a list of rows: executemany

    failures: list[BaseException] = []

    def guarded(events: list[Event]) -> None:
        try:
            write(events)
        except BaseException as exc:
            failures.append(exc)
            raise

    threads = [threading.Thread(target=guarded, args=(events,)) for events in per_thread]
    if args.wait:
        print("ready", flush=True)
        sys.stdin.readline()
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{args.tool}: a writer thread failed: {failures[0]!r}")
    return {"seconds": seconds, "events": args.threads * args.count}


def run_fill(args: argparse.Namespace) -> dict[str, Any]:
    log = open_log(args.url, args.work)
    done = 0
    while done < args.count:
        n = min(5000, args.count - done)
        log.append_many([make_event(done + i) for i in range(n)])
        done += n
    log.close()
    return {"records": done}


def run_verify(args: argparse.Namespace) -> dict[str, Any]:
    log = open_log(args.url, args.work)
    start = time.perf_counter()
    result = log.verify()
    seconds = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"the benchmark log does not verify: {result.describe()}")
    return {"seconds": seconds, "records": result.records, "checkpoints": result.checkpoints}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["append", "fill", "verify"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument(
        "--tool", choices=["pipewarden", "pipewarden-intake", "baseline"], default="pipewarden"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--wait", action="store_true")
    args = parser.parse_args()
    run = {"append": run_append, "fill": run_fill, "verify": run_verify}[args.mode]
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
