"""Encrypted put/get throughput of pipewarden's artifact store against raw AES-256-GCM.

    /work/venv/bin/python benchmarks/store/throughput.py            # full run
    /work/venv/bin/python benchmarks/store/throughput.py --small    # a 1/50 scale smoke run

The input is the 2 GiB pseudo-random file of sign.py (benchmarks/store/.work/data/,
generated if missing), hard-linked as weights.raw: a name the store's scan does not
take for a model format, so put stores it.

Every operation runs in a fresh process (_worker.py) under _measure.py, which gives the
process's peak RSS and CPU time; the worker times the operation alone, after imports and
set-up, so size / time is the data path's throughput:

- pipewarden put: `Workspace.init(tmp).store().put(weights.raw, ...)`: scan, encrypt
  (PWSTRM/1: AES-256-GCM in 1 MiB chunks), SHA-256, write, fsync, signed manifest.
- pipewarden get: `store.get(ref, out)`: verify the manifest, decrypt, SHA-256, write,
  fsync, rename into place.
- baseline put: read in 1 MiB chunks, AES-256-GCM each chunk (cryptography's AESGCM,
  a unique nonce per chunk), write, fsync at the end.
- baseline get: read that ciphertext, decrypt each chunk, write, fsync.
- references: a plain copy (read, write, fsync, no cryptography), the disk's share;
  and AES-256-GCM and SHA-256 in memory, no file I/O, the CPU's share.

Each round runs the copy, both puts, then both gets; the order of pipewarden and the
baseline alternates from round to round (ABBA), since on a virtual machine the cost of
writing 2 GiB depends on what was written just before. --repeat rounds (default 6);
the tables give the median and the best run. The input is in the page cache (read
once first); the written files go to the same disk, and os.sync() runs before every
measured operation so none pays for another's writeback.

Then a memory check: put and get of a 4 GiB file (--memory-gib), peak RSS against the
same operations on a 1 KiB file, which is the interpreter's and pipewarden's own
footprint.

Results: benchmarks/store/results/throughput.md and throughput.json. Everything the
run writes is deleted at the end; --keep keeps the inputs it generated.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import _common as c

TP_WORK = c.WORK / "throughput"
OPERATIONS = ("copy", "pipewarden put", "baseline put", "pipewarden get", "baseline get")
TARGET_RATIO = 0.75  # pipewarden's throughput at least 75% of the baseline's
RSS_TARGET_MB = 100  # peak RSS above the 1 KiB operation's


class Bench:
    """Runs worker operations measured, with the limits of this run."""

    def __init__(self, python: Path, *, timeout: float, mem_limit: int) -> None:
        self.python = python
        self.timeout = timeout
        self.mem_limit = mem_limit

    def run(self, *args: str, fresh: Path | None = None) -> dict[str, object]:
        """One operation in a fresh process: its own JSON plus wall time and peak RSS.

        Before every try (a try disturbed by other processes is run again) the folder
        `fresh` is removed, and os.sync() flushes what earlier operations wrote, so no
        operation pays for another's writeback.
        """

        def before() -> None:
            if fresh is not None:
                shutil.rmtree(fresh, ignore_errors=True)
            os.sync()

        run = c.measure(
            c.worker(self.python, *args), timeout=self.timeout, mem_limit=self.mem_limit, before=before
        )
        result = c.worker_result(run, args[0])
        result |= {
            "process_seconds": round(run.wall_seconds, 3),
            "peak_rss_mib": round(run.max_rss_kib / 1024, 1),
            "cpu_seconds": run.cpu_seconds,
            "foreign_cpu_seconds": run.foreign_cpu_seconds,
            "tries": run.tries,
            "disturbed": run.disturbed,
        }
        seconds = float(result.get("seconds", 0.0))  # type: ignore[arg-type]
        size = int(result.get("bytes", 0))  # type: ignore[call-overload]
        speed = f"{size / c.MIB / seconds:8.0f} MiB/s" if seconds > 0 else " " * 14
        print(
            f"  {args[0]:<8} {seconds:7.2f} s {speed} {result['peak_rss_mib']:6.0f} MiB  "
            f"(try {run.tries}, others' CPU {run.foreign_cpu_seconds:.2f} s)",
            file=sys.stderr,
            flush=True,
        )
        return result


def throughput_runs(bench: Bench, source: Path, repeat: int) -> dict[str, list[dict[str, object]]]:
    """`repeat` rounds of copy, both puts, both gets; pipewarden first in even rounds, the
    baseline first in odd ones. Each run records its position (1 or 2) in its pair."""
    runs: dict[str, list[dict[str, object]]] = {op: [] for op in OPERATIONS}
    ws, sealed, out = TP_WORK / "ws", TP_WORK / "baseline.sealed", TP_WORK / "out.raw"
    for rnd in range(repeat):
        print(f"round {rnd + 1}", file=sys.stderr, flush=True)
        tools = ("pipewarden", "baseline") if rnd % 2 == 0 else ("baseline", "pipewarden")
        try:
            runs["copy"].append(bench.run("copy", str(source), str(out)))
            out.unlink()
            for position, tool in enumerate(tools, 1):
                if tool == "pipewarden":
                    result = bench.run("pw-put", str(source), str(ws), fresh=ws)
                else:
                    result = bench.run("aes-put", str(source), str(sealed))
                runs[f"{tool} put"].append(result | {"position": position})
            for position, tool in enumerate(tools, 1):
                if tool == "pipewarden":
                    result = bench.run("pw-get", str(ws), str(out))
                else:
                    result = bench.run("aes-get", str(sealed), str(out))
                runs[f"{tool} get"].append(result | {"position": position})
                out.unlink()
        finally:
            shutil.rmtree(ws, ignore_errors=True)
            for path in (sealed, Path(f"{sealed}.key"), out):
                path.unlink(missing_ok=True)
    return runs


def memory_check(bench: Bench, gib: float) -> dict[str, object]:
    """Peak RSS of put and get on a `gib` GiB file, and on a 1 KiB file (the footprint)."""
    result: dict[str, object] = {}
    for label, size in (("1 KiB", 1024), (f"{gib:g} GiB", int(gib * c.GIB))):
        source = TP_WORK / f"memory-{size}.raw"
        ws, out = TP_WORK / f"ws-memory-{size}", TP_WORK / "memory-out.raw"
        try:
            print(f"memory check, {label}: writing the input ...", file=sys.stderr, flush=True)
            c.write_pseudorandom(source, size)
            c.read_through(source)
            put = bench.run("pw-put", str(source), str(ws), fresh=ws)
            source.unlink()  # the store holds it now; keeps the disk use at two copies
            get = bench.run("pw-get", str(ws), str(out))
            result[label] = {"bytes": size, "put": put, "get": get}
        finally:
            shutil.rmtree(ws, ignore_errors=True)
            source.unlink(missing_ok=True)
            out.unlink(missing_ok=True)
    return result


def profile_op(bench: Bench, op: str, source: Path, out_dir: Path) -> str:
    """cProfile one pipewarden put or get of `source` into results/profile-<op>.txt."""
    ws, out = TP_WORK / "ws-profile", TP_WORK / "out.raw"
    try:
        if op == "get":
            bench.run("pw-put", str(source), str(ws), fresh=ws)
            args = ["pw-get", str(ws), str(out)]
        else:
            args = ["pw-put", str(source), str(ws)]
        return c.profile(bench.python, args, out_dir / f"profile-{op}.txt", timeout=bench.timeout)
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        out.unlink(missing_ok=True)


# --------------------------------------------------------------------------- report


def summarize(runs: list[dict[str, object]]) -> dict[str, object]:
    seconds = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    size = int(runs[0]["bytes"])  # type: ignore[call-overload]
    med, best = c.median(seconds), min(seconds)
    summary: dict[str, object] = {
        "bytes": size,
        "seconds": [round(s, 3) for s in seconds],
        "median_seconds": round(med, 3),
        "best_seconds": round(best, 3),
        "mib_per_s": round(size / c.MIB / med, 1),
        "best_mib_per_s": round(size / c.MIB / best, 1),
        "cpu_seconds": [r["cpu_seconds"] for r in runs],
        "peak_rss_mib": max(float(r["peak_rss_mib"]) for r in runs),  # type: ignore[arg-type]
        "process_seconds": [r["process_seconds"] for r in runs],
        "tries": [r["tries"] for r in runs],
        "disturbed": [r["disturbed"] for r in runs],
    }
    for position in (1, 2):
        at = [s for s, r in zip(seconds, runs, strict=True) if r.get("position") == position]
        if at:
            summary[f"position_{position}_mib_per_s"] = round(size / c.MIB / c.median(at), 1)
    return summary


def _header(data: dict[str, object]) -> list[str]:
    env = data["environment"]
    assert isinstance(env, dict)
    return [
        "# Artifact store: encrypted put/get throughput and memory",
        "",
        f"Machine: {env['machine']}, {env['cpus']} CPUs, {env['memory_gib']} GiB, Python {env['python']}, "
        f"{env['openssl']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f" (pipewarden source {env['pipewarden_source']}, fingerprint {env['pipewarden_fingerprint']}).",
    ]


def render(data: dict[str, object]) -> str:
    ops = data["operations"]
    assert isinstance(ops, dict)
    mib = ops["pipewarden put"]["bytes"] / c.MIB
    lines = [
        *_header(data),
        "",
        f"Input: {mib:.0f} MiB of pseudo-random bytes, in the page cache. Every operation is a fresh "
        "process; its time is the operation's alone (after imports and workspace set-up), over "
        f"{data['repeat']} rounds with the order of pipewarden and the baseline alternating. "
        "Everything written goes to the same disk and is fsynced. CPU is the process's user + "
        "system time (median); peak RSS is the process's, the largest over the runs. The "
        "baseline is raw AES-256-GCM (cryptography's AESGCM, 1 MiB chunks, a unique nonce each) "
        "with the same reads, writes and fsync; pipewarden also scans the file, hashes it with "
        "SHA-256 (on a second thread), and writes, signs and checks its manifest.",
        "",
        "| operation | tool | median (MiB/s) | best (MiB/s) | runs (s) | CPU (s) | peak RSS (MiB) |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for name, label in (
        ("copy", "copy: read, write, fsync, no cryptography (the disk's share)"),
        ("pipewarden put", "put: encrypt to disk, fsync"),
        ("baseline put", "put: encrypt to disk, fsync"),
        ("pipewarden get", "get: decrypt to disk, fsync"),
        ("baseline get", "get: decrypt to disk, fsync"),
    ):
        r = ops[name]
        tool = name.split()[0] if name != "copy" else "reference"
        lines.append(
            f"| {label} | {tool} | {r['mib_per_s']:.0f} | {r['best_mib_per_s']:.0f} "
            f"| {', '.join(f'{s:.2f}' for s in r['seconds'])} | {c.median(r['cpu_seconds']):.2f} "
            f"| {r['peak_rss_mib']:.0f} |"
        )
    lines += [
        "",
        "Ratios of throughput, pipewarden / baseline: over all runs (medians; the target is "
        f">= {TARGET_RATIO} there), over the best run of each, and over the runs in the same "
        "position of their pair. The position matters on this machine (a virtual machine): 2 GiB "
        "written right after 2 GiB of files were deleted go about twice as fast as the next 2 GiB, "
        "whoever writes them, so the put that runs first and the get that runs second (after the "
        "first get's output is deleted) have the advantage. The order alternates, so each tool "
        "has each position equally often.",
        "",
        "| operation | all runs (medians) | best runs | both run first (medians) "
        "| both run second (medians) | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for op in ("put", "get"):
        pw, base = ops[f"pipewarden {op}"], ops[f"baseline {op}"]
        ratio = pw["mib_per_s"] / base["mib_per_s"]
        met = "met" if ratio >= TARGET_RATIO else "**missed**"
        cells = [ratio, pw["best_mib_per_s"] / base["best_mib_per_s"]]
        for position in (1, 2):
            key = f"position_{position}_mib_per_s"
            cells.append(pw[key] / base[key] if key in pw and key in base else float("nan"))
        lines.append(f"| {op} | " + " | ".join(f"{x:.2f}" for x in cells) + f" | {met} |")
    mem = data["in_memory"]
    assert isinstance(mem, dict)
    mem_mib = mem["bytes"] / c.MIB
    measured = [r for rs in data["runs"].values() for r in rs]  # type: ignore[attr-defined]
    lines += [
        "",
        f"In memory, no file I/O, one thread, over {mem_mib:.0f} MiB in 1 MiB chunks: AES-256-GCM "
        f"encrypt {mem_mib / mem['encrypt_seconds']:.0f} MiB/s, "
        f"decrypt {mem_mib / mem['decrypt_seconds']:.0f} MiB/s; "
        f"SHA-256 {mem_mib / mem['sha256_seconds']:.0f} MiB/s.",
        "",
        "Interference: " + c.interference([r["tries"] for r in measured], [r["disturbed"] for r in measured]),
    ]
    lines += _render_memory(data)
    lines += c.scan_harness.report_footer(data.get("notes"), heading="Notes")
    lines.append("")
    return "\n".join(lines)


def _render_memory(data: dict[str, object]) -> list[str]:
    check = data.get("memory_check")
    if not isinstance(check, dict) or not check:
        return []
    small_label, big_label = list(check)
    small, big = check[small_label], check[big_label]
    lines = [
        "",
        f"## Memory: put and get of {big_label}",
        "",
        f"Peak RSS of the process against the same operation on a {small_label} file (the "
        f"interpreter's and pipewarden's own footprint). Target: well under {RSS_TARGET_MB} MB above it.",
        "",
        f"| operation | {big_label}: time (s) | MiB/s | peak RSS (MiB) | {small_label}: peak RSS (MiB) "
        "| above it (MiB) | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for op in ("put", "get"):
        b, s = big[op], small[op]
        above = b["peak_rss_mib"] - s["peak_rss_mib"]
        met = "met" if above * c.MIB < RSS_TARGET_MB * 1e6 else "**missed**"
        lines.append(
            f"| {op} | {b['seconds']:.2f} | {big['bytes'] / c.MIB / b['seconds']:.0f} "
            f"| {b['peak_rss_mib']:.0f} | {s['peak_rss_mib']:.0f} | {above:.0f} "
            f"| < {RSS_TARGET_MB} MB: {met} |"
        )
    return lines


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pipewarden",
        type=Path,
        help="the pipewarden CLI whose Python runs the workers (default: this one's)",
    )
    parser.add_argument("--repeat", type=int, default=6, help="rounds (even: each tool goes first as often)")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="size of the memory check, 0 to skip")
    c.add_run_options(parser)
    args = parser.parse_args(argv)

    pipewarden = args.pipewarden or c.scan_harness.default_pipewarden()
    python = pipewarden.parent / "python"
    c.compile_pipewarden(python)
    scale = 0.02 if args.small else 1.0
    out_dir = c.RESULTS if scale == 1.0 else c.WORK / "results-small"
    bench = Bench(python, timeout=args.timeout, mem_limit=int(args.mem_limit_gib * c.GIB))

    inputs = c.Inputs(scale)
    shutil.rmtree(TP_WORK, ignore_errors=True)
    TP_WORK.mkdir(parents=True)
    try:
        model = inputs.model_file(regenerate=args.regenerate)
        source = TP_WORK / "weights.raw"
        os.link(model, source)
        c.read_through(source)
        data: dict[str, object] = {
            "environment": c.environment(c.package_versions(python, ["pipewarden", "cryptography"])),
            "repeat": args.repeat,
            "scale": scale,
        }
        print("in memory ...", file=sys.stderr, flush=True)
        data["in_memory"] = bench.run("memory", str(int(c.size_of(source) // c.MIB)))
        before = c.scan_harness.source_fingerprint()
        runs = throughput_runs(bench, source, args.repeat)
        after = c.scan_harness.source_fingerprint()
        data["operations"] = {op: summarize(rs) for op, rs in runs.items()}
        data["runs"] = runs
        data["memory_check"] = memory_check(bench, args.memory_gib * scale) if args.memory_gib else {}

        notes = []
        if before != after:
            notes.append(f"the source changed during the throughput runs ({before} -> {after})")
        ops = data["operations"]
        for op in ("put", "get"):
            pw, base = ops[f"pipewarden {op}"], ops[f"baseline {op}"]
            if pw["mib_per_s"] < base["mib_per_s"] * TARGET_RATIO:
                note = f"{op}: pipewarden at {pw['mib_per_s'] / base['mib_per_s']:.2f} of the baseline"
                if args.profile:
                    note += f" (cProfile: {profile_op(bench, op, source, out_dir)})"
                notes.append(note)
        data["notes"] = notes
    finally:
        shutil.rmtree(TP_WORK, ignore_errors=True)
        shutil.rmtree(c.SCRATCH, ignore_errors=True)
        if not args.keep:
            inputs.remove_created()
    c.write_outputs("throughput", render(data), data, json_to_stdout=False, directory=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
