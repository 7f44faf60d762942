"""Scale-out on Dask: the local engine against a two-worker local Dask cluster, same machine.

Two workloads, each run by both engines in a fresh process:
  scan   a model hub of generated files (benign pickles, pickles that call os.system('echo ...'),
         .npy arrays, zips holding a pickle) scanned with `scan_path` / `scan_path_dask`;
  check  a generated Parquet data set (planted out-of-range values, formulas, repeated ids, duplicate
         rows) checked with `check` / `check_dask` against a contract.

For each run: wall time, peak resident memory of the client process and of the whole process tree
(client plus workers, sampled every 50 ms), and a digest of the result, so the two engines' results can
be shown identical. The Dask runs time the work on a cluster already started, and report the cluster's
start-up on its own.

    python benchmarks/dask/bench.py                      # 10,000 files, 10,000,000 rows
    python benchmarks/dask/bench.py --files 500 --rows 200000   # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# os.system('echo hi') through GLOBAL + REDUCE (CWE-502): what a malicious model file does on load.
EVIL = b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R."


def make_hub(root: Path, files: int) -> None:
    import numpy as np

    done = root.with_name(root.name + ".done")  # beside the hub, not in it
    if done.exists() and int(done.read_text()) == files:
        return
    rng = np.random.default_rng(0)
    for i in range(files):
        folder = root / f"org-{i % 40:02d}" / f"model-{i % 250:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = i % 10
        if kind == 0:
            (folder / f"f{i}.pkl").write_bytes(EVIL)
        elif kind == 1:
            np.save(folder / f"f{i}.npy", rng.normal(size=(64, 16)).astype(np.float32))
        elif kind == 2:
            with zipfile.ZipFile(folder / f"f{i}.zip", "w") as z:
                z.writestr("archive/data.pkl", pickle.dumps({"w": list(range(50))}, protocol=2))
        else:
            data = {"layer": [float(x) for x in rng.normal(size=200)], "name": f"m{i}"}
            (folder / f"f{i}.pkl").write_bytes(pickle.dumps(data, protocol=4))
    done.write_text(str(files))


def contract() -> Any:
    from pipewarden.data import ColumnSpec, Contract

    return Contract(
        columns=(
            ColumnSpec(name="id", dtype="string", unique=True),
            ColumnSpec(name="amount", dtype="number", minimum=-1000, maximum=1000),
            ColumnSpec(name="qty", dtype="integer", minimum=0, maximum=100),
            ColumnSpec(name="kind", dtype="category", categories=("a", "b", "c", "d")),
            ColumnSpec(name="note", dtype="string", max_length=40),
            ColumnSpec(name="y", dtype="integer"),
        ),
        label="y",
        labels=("0", "1"),
        max_duplicate_fraction=0.001,
    )


def make_table(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    rng = np.random.default_rng(1)
    ids = np.arange(rows, dtype=np.int64)
    amount = np.round(rng.uniform(-900, 900, rows), 2)
    qty = rng.integers(0, 100, rows)
    kind = rng.choice(np.array(["a", "b", "c", "d"]), rows)
    notes = np.array([f"note {k}" for k in range(1000)])[rng.integers(0, 1000, rows)].astype(object)
    y = rng.integers(0, 2, rows)
    bad = rng.choice(rows, rows // 1000, replace=False)
    amount[bad[: len(bad) // 2]] = 5000.0  # out of range
    notes[bad[len(bad) // 2 :]] = "=HYPERLINK(1)"  # a formula
    repeat = rng.choice(np.arange(1000, rows), rows // 2000, replace=False)
    ids[repeat] = rng.integers(0, 1000, repeat.size)  # an earlier id
    dup = rng.choice(np.arange(1000, rows), rows // 500, replace=False)
    src = rng.integers(0, 1000, dup.size)  # whole rows copied from the first thousand
    ids[dup], amount[dup], qty[dup], kind[dup], notes[dup], y[dup] = (
        ids[src],
        amount[src],
        qty[src],
        kind[src],
        notes[src],
        y[src],
    )
    table = pa.table(
        {
            "id": pc.cast(pa.array(ids), pa.string()),
            "amount": amount,
            "qty": qty,
            "kind": kind,
            "note": pa.array(notes, pa.string()),
            "y": y,
        }
    )
    pq.write_table(table, path, row_group_size=262_144)


def _tree_rss(pid: int) -> tuple[int, int]:
    import psutil

    me = psutil.Process(pid)
    own = me.memory_info().rss
    total = own
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue
    return own, total


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def one(workload: str, engine: str, work: Path, workers: int) -> dict[str, Any]:
    """Run one measurement in this process and return its figures."""
    peak = [0, 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            own, total = _tree_rss(os.getpid())
            peak[0], peak[1] = max(peak[0], own), max(peak[1], total)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    startup = 0.0
    client = cluster = None
    if engine == "dask":
        from distributed import Client, LocalCluster

        began = time.perf_counter()
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = Client(cluster)
        startup = time.perf_counter() - began
    began = time.perf_counter()
    if workload == "scan":
        from pipewarden.scan import scan_path, scan_path_dask

        report = scan_path_dask(work / "hub", client=client) if client else scan_path(work / "hub")
        result: dict[str, Any] = report.to_dict()
        summary = {"targets": report.targets, **report.counts()}
    else:
        from pipewarden.data import check, check_dask

        path = work / "table.parquet"
        checked = (
            check_dask(path, contract=contract(), client=client)
            if client
            else check(path, contract=contract())
        )
        result = {
            "report": checked.report.to_dict(),
            "rows": checked.rows,
            "quarantined": checked.quarantined,
        }
        summary = {"rows": checked.rows, "accepted": checked.accepted, "quarantined": checked.quarantined}
    seconds = time.perf_counter() - began
    stop.set()
    sampler.join()
    if client is not None and cluster is not None:
        client.close()
        cluster.close()
    return {
        "workload": workload,
        "engine": engine,
        "seconds": round(seconds, 2),
        "startup_seconds": round(startup, 2),
        "client_peak_mib": peak[0] >> 20,
        "tree_peak_mib": peak[1] >> 20,
        "digest": _digest(result),
        **summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=HERE / ".work")
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.work, args.workers)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    make_hub(args.work / "hub", args.files)
    make_table(args.work / "table.parquet", args.rows)
    rows: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        for workload in ("scan", "check"):
            for engine in ("local", "dask"):
                load = os.getloadavg()[0]
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        workload,
                        engine,
                        "--work",
                        str(args.work),
                        "--workers",
                        str(args.workers),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row["load_before"] = round(load, 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
    for workload in ("scan", "check"):
        digests = {r["digest"] for r in rows if r["workload"] == workload}
        print(f"{workload}: results identical across engines and runs: {len(digests) == 1}")


if __name__ == "__main__":
    main()
