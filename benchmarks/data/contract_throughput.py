"""Data-contract check throughput and peak memory: pipewarden vs pandera, same rules, same run.

    /work/venv/bin/python benchmarks/data/contract_throughput.py             # 1,000,000 rows x 20 columns
    /work/venv/bin/python benchmarks/data/contract_throughput.py --rows 100000  # a quick run

Generates one table (fixed seed) with about 0.1% of rows breaking a rule, and
writes it as CSV and Parquet into benchmarks/data/.work/ (kept between runs of
the same size). Both tools check the same rules: types, numeric ranges,
nullability, categories, string lengths, a full-match pattern, and uniqueness
of the id column. pandera reads the file with pandas (the way it is used) and
validates lazily, so it collects every failure as pipewarden does; pipewarden
streams the file in chunks and also runs its always-on checks (formula
injection, control characters, oversized text, NaN/Inf, duplicate rows), which
pandera does not do.

Each (tool, format) runs in a fresh child process, --repeat times (default 3),
interleaved; the table shows the best wall time of the read + validate work
(measured in the child, after imports), and the child's peak RSS
(getrusage(RUSAGE_SELF).ru_maxrss, max over runs). Both tools must find the
same rejected rows; the table shows how many, so a mismatch is visible.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
SEED = 20_250_605
FLOATS, INTS = 8, 4
COLORS = ["red", "green", "blue", "amber", "violet"]
SIZES = ["s", "m", "l", "xl"]
REGIONS = ["north", "south", "east", "west", "centre", "island"]
ID_PATTERN = "[0-9a-f]{16}"
CODE_PATTERN = "[A-Z]{2}-[0-9]{4}"
BAD_FRACTION = 0.001


def rules() -> dict[str, dict[str, Any]]:
    """The one rule set both tools check, column by column."""
    out: dict[str, dict[str, Any]] = {"id": {"dtype": "string", "pattern": ID_PATTERN, "unique": True}}
    for i in range(FLOATS):
        out[f"x{i}"] = {"dtype": "number", "min": -10.0, "max": 10.0}
    out["x_opt"] = {"dtype": "number", "min": 0.0, "max": 1.0, "nullable": True}
    for i in range(INTS):
        out[f"n{i}"] = {"dtype": "integer", "min": 0, "max": 1000}
    out["color"] = {"dtype": "category", "categories": COLORS}
    out["size"] = {"dtype": "category", "categories": SIZES}
    out["region"] = {"dtype": "category", "categories": REGIONS}
    out["code"] = {"dtype": "string", "pattern": CODE_PATTERN}
    out["note"] = {"dtype": "string", "min_length": 3, "max_length": 40}
    out["flag"] = {"dtype": "boolean"}
    assert len(out) == 20, len(out)
    return out


def generate(rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    csv, parquet = WORK / f"table-{rows}.csv", WORK / f"table-{rows}.parquet"
    if csv.exists() and parquet.exists():
        return csv, parquet
    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    ids = rng.choice(np.iinfo(np.int64).max, size=rows, replace=False)
    data: dict[str, Any] = {"id": [f"{v:016x}" for v in ids]}
    for i in range(FLOATS):
        data[f"x{i}"] = rng.uniform(-10, 10, rows).round(6)
    opt = rng.uniform(0, 1, rows).round(6)
    opt[rng.random(rows) < 0.05] = np.nan
    data["x_opt"] = opt
    for i in range(INTS):
        data[f"n{i}"] = rng.integers(0, 1001, rows)
    data["color"] = rng.choice(COLORS, rows)
    data["size"] = rng.choice(SIZES, rows)
    data["region"] = rng.choice(REGIONS, rows)
    letters = rng.integers(65, 91, (rows, 2))
    digits = rng.integers(0, 10_000, rows)
    data["code"] = [f"{chr(a)}{chr(b)}-{d:04d}" for (a, b), d in zip(letters, digits, strict=True)]
    words = np.array(["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"])
    data["note"] = (
        pd.Series(words[rng.integers(0, 8, rows)]) + " " + pd.Series(words[rng.integers(0, 8, rows)])
    )
    data["flag"] = rng.random(rows) < 0.5
    frame = pd.DataFrame(data)
    # About 0.1% of the rows break one rule each, spread over the kinds of rule.
    bad = rng.choice(rows, size=int(rows * BAD_FRACTION), replace=False)
    kinds = np.array_split(bad, 7)
    frame.loc[kinds[0], "x3"] = 99.5  # out of range
    frame.loc[kinds[1], "n2"] = 5000  # out of range
    frame.loc[kinds[2], "color"] = "purple"  # not a category
    frame.loc[kinds[3], "code"] = "ab-12"  # breaks the pattern
    frame.loc[kinds[4], "note"] = "x"  # too short
    frame.loc[kinds[5], "x5"] = np.nan  # missing in a column that needs a value
    frame.loc[kinds[6], "id"] = frame.loc[
        kinds[6] - 1 if kinds[6].min() > 0 else kinds[6] + 1, "id"
    ].to_numpy()
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    return csv, parquet


# --------------------------------------------------------------------------- the two tools (child side)


def run_pipewarden(path: Path) -> int:
    from pipewarden.data import ColumnSpec, Contract, check

    columns = []
    for name, r in rules().items():
        categories = tuple(r["categories"]) if "categories" in r else None
        columns.append(
            ColumnSpec(
                name=name,
                dtype=r["dtype"],
                nullable=r.get("nullable", False),
                minimum=r.get("min"),
                maximum=r.get("max"),
                categories=categories,
                min_length=r.get("min_length"),
                max_length=r.get("max_length"),
                pattern=r.get("pattern"),
                unique=r.get("unique", False),
            )
        )
    contract = Contract(columns=tuple(columns), max_duplicate_fraction=0.0)
    result = check(path, contract=contract)
    return result.quarantined


def run_pandera(path: Path) -> int:
    import pandas as pd
    import pandera.pandas as pa

    kinds = {"number": float, "integer": int, "string": str, "category": str, "boolean": bool}
    columns = {}
    for name, r in rules().items():
        checks = []
        if "min" in r:
            checks.append(pa.Check.in_range(r["min"], r["max"]))
        if "categories" in r:
            checks.append(pa.Check.isin(r["categories"]))
        if "pattern" in r:
            checks.append(pa.Check.str_matches(f"^(?:{r['pattern']})$"))
        if "min_length" in r:
            checks.append(pa.Check.str_length(r["min_length"], r["max_length"]))
        columns[name] = pa.Column(
            kinds[r["dtype"]],
            checks=checks,
            nullable=r.get("nullable", False),
            unique=r.get("unique", False),
            report_duplicates="exclude_first",  # as pipewarden: the first occurrence is not the repeat
        )
    schema = pa.DataFrameSchema(columns, strict=True)
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        return int(cases["index"].dropna().nunique())
    return 0


def child(tool: str, path: Path) -> None:
    # Imports happen before the clock starts: the table shows the work, not the interpreter's start-up.
    import pandas  # noqa: F401
    import pyarrow.compute
    import pyarrow.parquet  # noqa: F401

    if tool == "pipewarden":
        import pipewarden.data  # noqa: F401
    else:
        import pandera.pandas  # noqa: F401
    started = time.perf_counter()
    rejected = run_pipewarden(path) if tool == "pipewarden" else run_pandera(path)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024, "rejected": rejected}))


# --------------------------------------------------------------------------- the harness (parent side)


def measure(tool: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", tool, str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {
            "error": proc.stderr.strip().splitlines()[-1]
            if proc.stderr.strip()
            else f"exit {proc.returncode}"
        }
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    import pandas
    import pandera

    from pipewarden import __version__

    csv, parquet = generate(args.rows)
    tools = ("pipewarden", "pandera")
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in range(args.repeat):
        for fmt, path in (("csv", csv), ("parquet", parquet)):
            for tool in tools:
                got = measure(tool, path)
                key = (tool, fmt)
                if "error" in got:
                    best[key] = got
                    continue
                old = best.get(key)
                if old is None or "error" in old:
                    best[key] = got
                else:
                    best[key] = {
                        "seconds": min(old["seconds"], got["seconds"]),
                        "peak_mib": max(old["peak_mib"], got["peak_mib"]),
                        "rejected": got["rejected"],
                    }
    print(
        f"\n{args.rows:,} rows x 20 columns, best of {args.repeat}; Python {platform.python_version()}, "
        f"pipewarden {__version__}, pandera {pandera.__version__}, pandas {pandas.__version__}\n"
    )
    print(
        "| format | tool | rows/s | wall s | peak RSS MiB | rejected rows | pandera time / pipewarden time |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for fmt in ("csv", "parquet"):
        ours = best[("pipewarden", fmt)]
        for tool in tools:
            got = best[(tool, fmt)]
            if "error" in got:
                print(f"| {fmt} | {tool} | error: {got['error'][:60]} | | | | |")
                continue
            ratio = ""
            if tool == "pandera" and "error" not in ours:
                ratio = f"{got['seconds'] / ours['seconds']:.2f}x"
            print(
                f"| {fmt} | {tool} | {args.rows / got['seconds']:,.0f} | {got['seconds']:.2f} | "
                f"{got['peak_mib']:.0f} | {got['rejected']:,} | {ratio} |"
            )
    print(json.dumps({f"{t}/{f}": v for (t, f), v in best.items()}, indent=1))


if __name__ == "__main__":
    main()
