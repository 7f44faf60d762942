"""Side-by-side scan speed and peak memory: pipewarden, picklescan, modelscan, fickling.

    /work/venv/bin/python benchmarks/scan/speed.py            # full run
    /work/venv/bin/python benchmarks/scan/speed.py --small    # a 1/50 scale smoke run

Generates four benign model files into benchmarks/scan/.work/speed-cases/
(kept between runs; --regenerate rebuilds them), then times every tool on
every case: wall time best of --repeat runs (default 3), peak RSS of the
scanner process (max over the runs) measured by a fresh wrapper process per
run (_measure.py, getrusage(RUSAGE_CHILDREN)). Runs are interleaved across
tools so that drift in the machine's state hits every tool alike. A run that
times out, crashes or reports an error is a result, not a harness failure;
after a timeout that tool is not run again on that case.

The files are all benign, so every tool should say "clean"; a tool that says
"error" here did not do the same work and its time is not comparable.

The reference is plain disk-read speed: reading the 1 GB checkpoint with
Python in 1 MiB chunks. The file sits in the page cache (it was just
written, or read by the reference pass before the tools run), so every tool
and the reference read from memory, not from the disk.

Results: a markdown table and JSON on stdout and in
benchmarks/scan/results/speed.md and speed.json. Where pipewarden is slower
than a competitor that gave a verdict, or peaks above 200 MB, --profile
(default on) writes a cProfile summary to results/profile-<case>.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _harness as h

CASES_DIR = h.WORK / "speed-cases"
SCRATCH = h.WORK / "scratch"
MIB = 1024 * 1024
RSS_BUDGET_MB = 200  # pipewarden's memory goal: above this, the case gets a profile


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    path: str  # relative to CASES_DIR
    build: Callable[[Path, float], None]  # (destination, scale)


def _torch_checkpoint(dest: Path, scale: float) -> None:
    """A state dict of float32 tensors written by torch.save (zip format): 256 layers of a
    1024x1024 weight and a bias, 1 GiB at scale 1."""
    import torch

    gen = torch.Generator().manual_seed(0)
    rows = max(8, int(1024 * scale))
    state = {}
    for i in range(256):
        state[f"layers.{i}.weight"] = torch.randn(rows, 1024, generator=gen)
        state[f"layers.{i}.bias"] = torch.randn(1024, generator=gen)
    torch.save(state, dest)


def _sklearn_forest(dest: Path, scale: float) -> None:
    """A RandomForestClassifier of 360 fully grown trees on noisy data (about 200 MB at
    scale 1), pickled with plain pickle at its default protocol."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 20)).astype(np.float32)
    y = rng.integers(0, 2, 20_000)
    trees = max(2, int(360 * scale))
    model = RandomForestClassifier(n_estimators=trees, n_jobs=2, random_state=0).fit(x, y)
    with open(dest, "wb") as f:
        pickle.dump(model, f)


def _many_objects(dest: Path, scale: float) -> None:
    """A list of 2,000,000 small records, alternately dicts and tuples of an int, a float
    and a short string: a pickle of tens of millions of opcodes."""
    n = max(1000, int(2_000_000 * scale))
    records: list[object] = [
        {"id": i, "score": i * 0.5, "tag": f"t{i % 1000}"} if i % 2 == 0 else (i, i * 0.25, f"u{i % 997}")
        for i in range(n)
    ]
    with open(dest, "wb") as f:
        pickle.dump(records, f)


def _folder(dest: Path, scale: float) -> None:
    """1,000 small model files: 400 plain pickles, 300 joblib files, 300 torch files."""
    import joblib
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    dest.mkdir()
    n = max(10, int(1000 * scale))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8))
    y = (x[:, 0] > 0).astype(int)
    for i in range(n):
        kind = i % 10
        if kind < 4:
            obj = {"weights": rng.standard_normal(256), "epoch": i, "name": f"model-{i}"}
            with open(dest / f"model_{i:04d}.pkl", "wb") as f:
                pickle.dump(obj, f)
        elif kind < 7:
            est = LogisticRegression().fit(x, y) if i % 2 else StandardScaler().fit(x)
            joblib.dump(est, dest / f"model_{i:04d}.joblib")
        else:
            state = {"fc.weight": torch.randn(16, 8), "fc.bias": torch.randn(16)}
            torch.save(state, dest / f"model_{i:04d}.pt")


CASES = (
    Case(
        "torch-1gb",
        "torch.save state dict, 512 float32 tensors, zip format",
        "checkpoint.pt",
        _torch_checkpoint,
    ),
    Case(
        "sklearn-200mb",
        "RandomForestClassifier (360 trees), plain pickle",
        "forest.pkl",
        _sklearn_forest,
    ),
    Case(
        "pickle-2m-objects",
        "list of 2,000,000 small dicts/tuples, plain pickle",
        "records.pkl",
        _many_objects,
    ),
    Case(
        "folder-1000-files",
        "1,000 small .pkl / .joblib / .pt files in one folder",
        "folder",
        _folder,
    ),
)


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def generate(cases: list[Case], *, into: Path, scale: float, regenerate: bool) -> dict[str, Path]:
    """Build each case into `into` unless the manifest says it is there at this scale."""
    into.mkdir(parents=True, exist_ok=True)
    manifest_path = into / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    paths: dict[str, Path] = {}
    for case in cases:
        path = into / case.path
        if not regenerate and manifest.get(case.name) == {"scale": scale} and path.exists():
            paths[case.name] = path
            continue
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        print(f"generating {case.name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        case.build(path, scale)
        print(
            f"  {size_of(path) / MIB:.0f} MiB in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
        manifest[case.name] = {"scale": scale}
        manifest_path.write_text(json.dumps(manifest, indent=2))
        paths[case.name] = path
    return paths


# --------------------------------------------------------------------------- measuring


def disk_read(path: Path, repeat: int) -> float:
    """Best time to read `path` in 1 MiB chunks with plain Python."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.read(MIB):
                pass
        best = min(best, time.perf_counter() - start)
    return best


def bench_case(
    tools: dict[str, h.Tool], target: Path, *, repeat: int, timeout: float, mem_limit: int
) -> dict[str, dict[str, object]]:
    runs: dict[str, list[h.Run]] = {name: [] for name in tools}
    verdicts: dict[str, list[h.Verdict]] = {name: [] for name in tools}
    for rep in range(repeat):
        for name, tool in tools.items():
            if verdicts[name] and verdicts[name][-1].status == h.TIMEOUT:
                continue
            run, verdict = h.scan_once(tool, target, timeout=timeout, mem_limit=mem_limit, scratch=SCRATCH)
            runs[name].append(run)
            verdicts[name].append(verdict)
            print(
                f"  run {rep + 1} {name:<10} {verdict.status:<8} {run.wall_seconds:8.2f} s "
                f"{run.max_rss_kib / 1024:8.0f} MiB  {verdict.detail[:80]}",
                file=sys.stderr,
                flush=True,
            )
    out: dict[str, dict[str, object]] = {}
    for name in tools:
        rs, vs = runs[name], verdicts[name]
        statuses = sorted({v.status for v in vs})
        out[name] = {
            "verdict": vs[0].status if len(statuses) == 1 else "/".join(statuses),
            "detail": vs[0].detail,
            "runs": len(rs),
            "wall_seconds": [round(r.wall_seconds, 3) for r in rs],
            "best_seconds": round(min(r.wall_seconds for r in rs), 3),
            "rss_mib": [round(r.max_rss_kib / 1024, 1) for r in rs],
            "peak_rss_mib": round(max(r.max_rss_kib for r in rs) / 1024, 1),
            "exit_codes": sorted({c for r in rs for c in r.exit_codes}),
        }
    return out


def profile_pipewarden(pipewarden: Path, target: Path, dest: Path, *, timeout: float) -> str:
    """cProfile one pipewarden scan of `target` and write the top of its cumulative-time
    table to `dest`. Returns the path written, or why not."""
    python = pipewarden.parent / "python"
    stats = dest.with_suffix(".prof")
    code = (
        "import cProfile, sys\n"
        "from pipewarden.cli import main\n"
        "target, out = sys.argv[1:3]\n"
        "sys.argv = ['pipewarden', 'scan', '--format', 'json', target]\n"
        "p = cProfile.Profile()\n"
        "try:\n    p.runcall(main)\n"
        "except SystemExit:\n    pass\n"
        "p.dump_stats(out)\n"
    )
    try:
        subprocess.run(
            [str(python), "-c", code, str(target), str(stats)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout * 3,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "profile timed out"
    if not stats.exists():
        return "profile run wrote no stats"
    text = h.profile_tables(python, stats)
    dest.write_text(text.replace(str(h.REPO_ROOT) + "/", ""), encoding="utf-8")
    stats.unlink()
    return str(dest.relative_to(h.REPO_ROOT) if dest.is_relative_to(h.REPO_ROOT) else dest)


# --------------------------------------------------------------------------- report


def _ratio(x: float, base: float) -> str:
    return f"{x / base:.2f}x" if base > 0 else "-"


def render(data: dict[str, object]) -> str:
    env = data["environment"]
    assert isinstance(env, dict)
    lines = [
        "# Scanner speed and memory, side by side",
        "",
        f"Machine: {env['machine']}, {env['cpus']} CPUs, Python {env['python']}. "
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f" (pipewarden source {env.get('pipewarden_source', '?')}, "
        f"fingerprint {env.get('pipewarden_fingerprint', '?')}).",
        f"Wall time is the best of {data['repeat']} runs; peak RSS is the largest over those "
        f"runs; time limit {data['timeout']:.0f} s per run. Ratios are tool / pipewarden: "
        "above 1 the tool is slower or bigger than pipewarden.",
        "",
    ]
    ref = data.get("disk_read")
    if isinstance(ref, dict):
        lines += [
            f"Disk-read reference: reading the {ref['mib']:.0f} MiB checkpoint in 1 MiB chunks "
            f"with Python takes {ref['seconds']:.2f} s ({ref['mib'] / ref['seconds']:.0f} MiB/s, "
            "page cache warm). A scanner reads a PyTorch zip's pickle member, not its "
            "tensor bytes, so on that case size / time can exceed the disk-read speed.",
            "",
        ]
    lines += [
        "| case | size | tool | verdict | best wall (s) | time vs pipewarden | size / time (MiB/s) "
        "| peak RSS (MiB) | RSS vs pipewarden |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    cases = data["cases"]
    assert isinstance(cases, list)
    for case in cases:
        results = case["results"]
        base = results.get("pipewarden")
        mib = case["size_bytes"] / MIB
        for name, r in results.items():
            timed_out = r["verdict"] == h.TIMEOUT
            secs = f">{data['timeout']:.0f}" if timed_out else f"{r['best_seconds']:.2f}"
            ratio = "-" if not base or timed_out else _ratio(r["best_seconds"], base["best_seconds"])
            rss_ratio = "-" if not base else _ratio(r["peak_rss_mib"], base["peak_rss_mib"])
            speed = "-" if timed_out else f"{mib / r['best_seconds']:.0f}"
            verdict = r["verdict"] + (f" ({r['detail'][:60]})" if r["detail"] else "")
            lines.append(
                f"| {case['name']} | {mib:.0f} MiB | {name} | {verdict} | {secs} | {ratio} "
                f"| {speed} | {r['peak_rss_mib']:.0f} | {rss_ratio} |"
            )
    lines += h.report_footer(
        data.get("pipewarden_notes"), heading="Where pipewarden falls short", cases=cases
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--competitors-venv",
        help=f"venv holding the competitors' CLIs "
        f"(default: ${h.COMPETITORS_ENV}, else {h.DEFAULT_COMPETITORS_VENV}); "
        "created from requirements-competitors.txt if missing",
    )
    parser.add_argument(
        "--pipewarden", type=Path, help="the pipewarden CLI (default: the one beside this Python)"
    )
    parser.add_argument(
        "--cases", nargs="+", choices=[c.name for c in CASES], default=[c.name for c in CASES]
    )
    parser.add_argument("--tools", nargs="+", choices=h.TOOLS, default=list(h.TOOLS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument(
        "--mem-limit-gib", type=float, default=16.0, help="address-space limit per run, 0 for none"
    )
    parser.add_argument("--small", action="store_true", help="1/50 scale cases: a smoke run")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    args = parser.parse_args(argv)
    if "pipewarden" not in args.tools:
        parser.error("--tools must include pipewarden: every ratio is against it")

    venv = h.competitors_venv(args.competitors_venv)
    if set(args.tools) & set(h.COMPETITOR_CLIS):
        h.ensure_competitors(venv)
    pipewarden = args.pipewarden or h.default_pipewarden()
    versions = h.tool_versions(pipewarden, venv)
    all_tools = h.make_tools(pipewarden, venv)
    tools = {n: all_tools[n] for n in h.TOOLS if n in args.tools}
    scale = 0.02 if args.small else 1.0
    mem_limit = int(args.mem_limit_gib * 1024**3)

    cases = [c for c in CASES if c.name in args.cases]
    # A smoke run keeps its own cases and results, so it never clobbers the real ones.
    cases_dir = CASES_DIR if scale == 1.0 else CASES_DIR / "small"
    out_dir = h.RESULTS if scale == 1.0 else h.WORK / "results-small"
    paths = generate(cases, into=cases_dir, scale=scale, regenerate=args.regenerate)
    # pip byte-compiles every package it installs, so the competitors start from
    # .pyc files; compile the checkout's pipewarden the same way, since an editable
    # install under PYTHONDONTWRITEBYTECODE would otherwise recompile it on every run.
    compile_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [
            str(pipewarden.parent / "python"),
            "-m",
            "compileall",
            "-q",
            str(h.REPO_ROOT / "src" / "pipewarden"),
        ],
        check=True,
        env=compile_env,
    )
    shutil.rmtree(SCRATCH, ignore_errors=True)

    data: dict[str, object] = {
        "environment": {
            "machine": platform.machine() + " " + platform.system(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {n: versions.get(n, "?") for n in tools},
            "pipewarden_source": h.source_revision(),
            "pipewarden_fingerprint": h.source_fingerprint(),
        },
        "repeat": args.repeat,
        "timeout": args.timeout,
        "scale": scale,
    }
    if "torch-1gb" in paths:
        ckpt = paths["torch-1gb"]
        secs = disk_read(ckpt, args.repeat)
        data["disk_read"] = {"mib": ckpt.stat().st_size / MIB, "seconds": round(secs, 3)}

    results = []
    notes: list[str] = []
    for case in cases:
        target = paths[case.name]
        print(f"{case.name}: {target}", file=sys.stderr, flush=True)
        before = h.source_fingerprint()
        res = bench_case(tools, target, repeat=args.repeat, timeout=args.timeout, mem_limit=mem_limit)
        results.append(
            {
                "name": case.name,
                "description": case.description,
                "size_bytes": size_of(target),
                "results": res,
            }
        )
        after = h.source_fingerprint()
        results[-1]["pipewarden_source"] = before if before == after else f"{before} -> {after}"
        pw = res["pipewarden"]
        why = []
        for name, r in res.items():
            if (
                name != "pipewarden"
                and r["verdict"] in (h.CLEAN, h.FLAGGED)
                and (
                    pw["verdict"] == h.TIMEOUT or r["best_seconds"] < pw["best_seconds"]  # type: ignore[operator]
                )
            ):
                why.append(f"slower than {name} ({pw['best_seconds']:.2f} s vs {r['best_seconds']:.2f} s)")
        if pw["peak_rss_mib"] > RSS_BUDGET_MB:  # type: ignore[operator]
            why.append(f"peak RSS {pw['peak_rss_mib']:.0f} MiB > {RSS_BUDGET_MB} MB")
        costly = bool(why)  # only time and memory get a profile
        if before != after:
            why.append("source changed while this case ran (its runs may mix two versions)")
        if pw["verdict"] != h.CLEAN:
            why.append(f"says {pw['verdict']} on this benign file ({pw['detail'][:120]})")
        if why:
            note = f"{case.name}: pipewarden " + "; ".join(why)
            if args.profile and costly:
                out_dir.mkdir(parents=True, exist_ok=True)
                prof = profile_pipewarden(
                    pipewarden, target, out_dir / f"profile-{case.name}.txt", timeout=args.timeout
                )
                note += f" (cProfile: {prof})"
            notes.append(note)
    data["cases"] = results
    data["pipewarden_notes"] = notes
    shutil.rmtree(SCRATCH, ignore_errors=True)
    h.write_outputs("speed", render(data), data, json_to_stdout=True, directory=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
