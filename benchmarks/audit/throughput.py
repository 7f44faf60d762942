"""Audit log throughput: appends per second against plain INSERTs of the same rows, and verification speed.

For SQLite (a file, WAL, synchronous=FULL, as pipewarden opens it) and a
PostgreSQL server started from the installed binaries (tests/integration/pgserver.py,
fsync on), each case runs pipewarden's `AuditLog` and the baseline in fresh
worker processes (_worker.py) on a fresh database:

- 1 writer, `append_many` in batches of 1,000 (baseline: one INSERT ... executemany per batch);
- 1 writer, `append` (baseline: one single-row INSERT transaction per event);
- 8 writer threads in one process, `append` (group commit gathers them; the baseline's threads each
  commit their own row);
- 8 writer processes, `append` (on PostgreSQL, writers that find the chain lock taken leave their
  events in the intake, and the next chainer takes every process's pending events in one commit);
- on SQLite only, 8 writer processes with every append through the intake (what SQLite would pay
  for PostgreSQL's way; it chains under its write lock instead).

The baseline writes the same bytes (the event's JSON, two 32-byte columns) into
a table like audit_records with no trigger, its position assigned by the database,
with no lock, no head read, no hashing and no checkpoints: the limit. Then
`AuditLog.verify` runs over a log of --verify-records records.

    python benchmarks/audit/throughput.py            # about 10 minutes
    python benchmarks/audit/throughput.py --small    # a smoke run, results in .work/results-small/
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(HERE.parent / "scan"))
import _harness as scan_harness  # noqa: E402  (benchmarks/scan/_harness.py)

WORK = HERE / ".work"
RESULTS = HERE / "results"
WORKER = HERE / "_worker.py"
SQLITE_TARGET = 20_000  # events/s with batching
RATIO_TARGET = 2.0  # pipewarden at most 2x slower than the baseline
VERIFY_TARGET = 200_000  # records/s

CASES = [
    # name, threads per process, processes, batch, events per thread (full scale), pipewarden's tool,
    # databases
    ("1 writer, append_many (batches of 1,000)", 1, 1, 1000, 100_000, "pipewarden", ("sqlite", "postgresql")),
    ("1 writer, append", 1, 1, 1, 2_000, "pipewarden", ("sqlite", "postgresql")),
    ("8 threads, append", 8, 1, 1, 400, "pipewarden", ("sqlite", "postgresql")),
    ("8 processes, append", 1, 8, 1, 400, "pipewarden", ("sqlite", "postgresql")),
    (
        "8 processes, append, all through the intake (not used)",
        1,
        8,
        1,
        400,
        "pipewarden-intake",
        ("sqlite",),
    ),
]
_numbers = itertools.count(1)


class Databases:
    """Fresh databases on demand: SQLite files under .work, and databases on one PostgreSQL server."""

    def __init__(self, stack: ExitStack, kinds: list[str]) -> None:
        self.admin: str | None = None
        if "postgresql" in kinds:
            from tests.integration.pgserver import find_bindir, postgres_server

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("no PostgreSQL binaries installed (initdb, pg_ctl); pass --databases sqlite")
            self.admin = stack.enter_context(postgres_server(bindir))

    def fresh(self, kind: str) -> str:
        """A new empty database with pipewarden's schema and the baseline's table."""
        from sqlalchemy import create_engine, text

        sys.path.insert(0, str(HERE))
        from _worker import plain

        from pipewarden.db import Database

        n = next(_numbers)
        if kind == "sqlite":
            url = f"sqlite:///{WORK / f'db-{n}.db'}"
        else:
            assert self.admin is not None
            engine = create_engine(
                self.admin.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
            )
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "bench_{n}"'))
            engine.dispose()
            url = self.admin.rsplit("/", 1)[0] + f"/bench_{n}"
        db = Database.open(url)
        plain.create(db.engine)
        db.dispose()
        return url

    def drop(self, kind: str, url: str) -> None:
        if kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
            return
        from sqlalchemy import create_engine, text

        assert self.admin is not None
        engine = create_engine(
            self.admin.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        engine.dispose()


def worker(*args: str) -> list[str]:
    return [sys.executable, str(WORKER), *args, "--work", str(WORK)]


def run_case(url: str, tool: str, *, threads: int, processes: int, batch: int, count: int) -> dict[str, Any]:
    """Start the writer process(es), release them together, and time until the last one is done."""
    shutil.rmtree(WORK / "checkpoints", ignore_errors=True)
    cmd = worker(
        "append", "--tool", tool, "--url", url, "--threads", str(threads), "--batch", str(batch),
        "--count", str(count), "--wait",
    )  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for p in procs:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"a {tool} worker did not start")
    start = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"a {tool} worker failed (exit {p.returncode})")
        results.append(json.loads(out))
    wall = time.perf_counter() - start if processes > 1 else results[0]["seconds"]
    events = sum(r["events"] for r in results)
    return {"seconds": wall, "events": events, "events_per_s": events / wall}


def measure_appends(dbs: Databases, kinds: list[str], *, scale: float, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in kinds:
        for name, threads, processes, batch, count, ours, databases in CASES:
            if kind not in databases:
                continue
            n = max(batch, int(count * scale))
            runs: dict[str, list[dict[str, Any]]] = {"pipewarden": [], "baseline": []}
            for r in range(repeat):
                order = ("pipewarden", "baseline") if r % 2 == 0 else ("baseline", "pipewarden")
                for side in order:
                    tool = ours if side == "pipewarden" else side
                    url = dbs.fresh(kind)
                    try:
                        print(f"{kind}: {name}: {tool} (round {r + 1}) ...", file=sys.stderr, flush=True)
                        runs[side].append(
                            run_case(url, tool, threads=threads, processes=processes, batch=batch, count=n)
                        )
                    finally:
                        dbs.drop(kind, url)
            out[f"{kind}: {name}"] = {
                "database": kind,
                "case": name,
                "events_per_run": n * threads * processes,
                "runs": runs,
                "median": {t: statistics.median(x["events_per_s"] for x in rs) for t, rs in runs.items()},
            }
    return out


def measure_verify(dbs: Databases, kinds: list[str], *, records: int, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in kinds:
        url = dbs.fresh(kind)
        try:
            shutil.rmtree(WORK / "checkpoints", ignore_errors=True)
            print(f"{kind}: filling a log of {records} records ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            subprocess.run(
                worker("fill", "--url", url, "--count", str(records)), check=True, capture_output=True
            )
            fill = time.perf_counter() - start
            runs = []
            for r in range(repeat):
                print(f"{kind}: verify (round {r + 1}) ...", file=sys.stderr, flush=True)
                done = subprocess.run(
                    worker("verify", "--url", url), check=True, capture_output=True, text=True
                )
                runs.append(json.loads(done.stdout))
        finally:
            dbs.drop(kind, url)
        rates = [x["records"] / x["seconds"] for x in runs]
        out[kind] = {
            "records": records,
            "checkpoints": runs[0]["checkpoints"],
            "fill_seconds": fill,
            "runs": runs,
            "median_records_per_s": statistics.median(rates),
        }
    return out


def render(data: dict[str, Any]) -> str:
    env = data["environment"]
    lines = [
        "# Audit log throughput",
        "",
        f"{env['machine']}, {env['cpus']} CPUs, Python {env['python']}, SQLite {env['sqlite']}, "
        f"PostgreSQL {env['postgresql']}; pipewarden source {env['pipewarden_source']} "
        f"(fingerprint {env['pipewarden_fingerprint']}). Medians of {data['repeat']} rounds, "
        "the two alternating which runs first; every run on a fresh database.",
        "",
        f"Command: `{data['command']}`",
        "",
        "## Appends",
        "",
        "| database | case | events per run | pipewarden (events/s) | baseline: plain INSERTs (events/s) "
        "| baseline / pipewarden | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in data["appends"].values():
        pw, base = row["median"]["pipewarden"], row["median"]["baseline"]
        ratio = base / pw
        targets = [f"within {RATIO_TARGET:g}x: {'met' if ratio <= RATIO_TARGET else '**missed**'}"]
        if "not used" in row["case"]:
            targets = ["none: a comparison"]
        if row["database"] == "sqlite" and "append_many" in row["case"]:
            targets.append(f">= {SQLITE_TARGET:,}/s: {'met' if pw >= SQLITE_TARGET else '**missed**'}")
        lines.append(
            f"| {row['database']} | {row['case']} | {row['events_per_run']:,} | {pw:,.0f} | {base:,.0f} "
            f"| {ratio:.2f} | {'; '.join(targets)} |"
        )
    lines += [
        "",
        "## Verification",
        "",
        "| database | records | checkpoints | median (records/s) | runs (s) | target |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for kind, row in data["verify"].items():
        rate = row["median_records_per_s"]
        met = "met" if rate >= VERIFY_TARGET else "**missed**"
        runs = ", ".join(f"{x['seconds']:.2f}" for x in row["runs"])
        lines.append(
            f"| {kind} | {row['records']:,} | {row['checkpoints']:,} | {rate:,.0f} | {runs} "
            f"| >= {VERIFY_TARGET:,}/s: {met} |"
        )
    if data["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"


def environment(kinds: list[str], dbs: Databases) -> dict[str, Any]:
    import sqlite3

    pg = "not measured"
    if "postgresql" in kinds and dbs.admin is not None:
        from sqlalchemy import create_engine, text

        engine = create_engine(dbs.admin.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            pg = str(conn.execute(text("SHOW server_version")).scalar())
        engine.dispose()
    return {
        "machine": f"{platform.machine()} {platform.system()}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "pipewarden_source": scan_harness.source_revision(),
        "pipewarden_fingerprint": scan_harness.source_fingerprint(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a 1/10-scale smoke run (results in .work/)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case")
    parser.add_argument("--verify-records", type=int, default=1_000_000, help="size of the log verified")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    args = parser.parse_args(argv)
    kinds = [k for k in args.databases.split(",") if k]
    scale = 0.1 if args.small else 1.0
    out_dir = WORK / "results-small" if args.small else RESULTS
    from pipewarden.crypto import SigningKey

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    SigningKey.generate().save(WORK / "bench.key")
    try:
        with ExitStack() as stack:
            dbs = Databases(stack, kinds)
            before = scan_harness.source_fingerprint()
            data: dict[str, Any] = {
                "command": "python benchmarks/audit/throughput.py"
                + "".join(f" {a}" for a in (argv or sys.argv[1:])),
                "environment": environment(kinds, dbs),
                "repeat": args.repeat,
                "scale": scale,
            }
            data["appends"] = measure_appends(dbs, kinds, scale=scale, repeat=args.repeat)
            records = int(args.verify_records * scale)
            data["verify"] = measure_verify(dbs, kinds, records=records, repeat=args.repeat)
            after = scan_harness.source_fingerprint()
            data["notes"] = (
                [] if before == after else [f"the source changed during the runs ({before} -> {after})"]
            )
    finally:
        shutil.rmtree(WORK / "checkpoints", ignore_errors=True)
    scan_harness.write_outputs("throughput", render(data), data, json_to_stdout=False, directory=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
