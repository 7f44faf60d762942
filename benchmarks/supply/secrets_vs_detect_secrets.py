"""`pipewarden secrets` beside detect-secrets on one synthetic ML repository with planted secrets.

The repository (see `_secrets_tree`) is written to a temporary folder from one seed: about `--files`
files in ten projects (modules, tests, YAML configs, env files, notebooks with outputs, requirements
with hashes, poetry and uv lock files, CycloneDX SBOMs, docs, CSV data, PNG images) and `--secrets`
planted secrets of ten kinds in five places: code, YAML, env files, notebook cell sources and notebook
outputs (stream text, an ``execute_result``'s text/plain, an error's value and traceback). A few
notebook sources are stored as one JSON string and a few output texts split a value across two JSON
strings. The ground truth is each secret's kind, file and lines (for a notebook, also the cell and the
output); values are never written to the results.

Both tools run as commands on the same tree in the same run, each in a fresh process so both pay their
start-up: ``detect-secrets scan --all-files -n .`` (default plugins and filters, but no verification:
with it, detect-secrets sends each candidate of a verifiable type to its vendor; pipewarden never
does) and ``pipewarden secrets . -f json``. detect-secrets uses a process per core by default; it is
also run with ``-c 1`` for the per-core comparison (``--no-single-core`` skips that).

Scoring. A planted secret is found when the tool reports a finding in its file at one of its lines.
detect-secrets reads a notebook as lines of JSON: found when the reported line of the file holds the
value (JSON-escaped or not; for a key block any of its lines; for a split value either part).
pipewarden reports a notebook's cell, output and line within that text: found when they match. Any
other finding is a false positive, counted by place (file and line: detect-secrets lists one entry per
detector that matched the same line, pipewarden one per value and line with the other detectors
named in it) and by file type. "Value in output" is whether any planted value, or its plain SHA-1
(what a detect-secrets baseline keeps as ``hashed_secret``), occurs anywhere in the tool's output.

Measured per run: wall time, CPU time (user + system, the child and the processes it waited for) and
peak RSS, all from ``os.wait4`` on the child (its ``ru_maxrss`` is the largest single process of its
tree, so detect-secrets' pool workers are not summed). The median of `--repeat` runs is reported;
the load average before and after is recorded.

    python benchmarks/supply/secrets_vs_detect_secrets.py                # 2,000 files, 60 secrets, 3 runs
    python benchmarks/supply/secrets_vs_detect_secrets.py --files 400 --secrets 20 --repeat 1 --no-save
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _secrets_report import markdown
from _secrets_tree import KINDS, PLACES, Planted, Tree, build_tree

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
NAME = "secrets_vs_detect_secrets"


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    rss_kib: int
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One reported finding: a line of the file, or for pipewarden in a notebook a line of a cell's
    source (`output` None) or of one of its outputs."""

    file: str
    line: int
    kind: str
    cell: int | None = None
    output: int | None = None


def measure(command: list[str], cwd: Path) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            rss_kib=usage.ru_maxrss,
            code=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def detect_secrets_hits(stdout: str) -> list[Hit]:
    doc = json.loads(stdout)
    return [
        Hit(file=name, line=int(item["line_number"]), kind=item["type"])
        for name, items in doc["results"].items()
        for item in items
    ]


def pipewarden_hits(stdout: str) -> tuple[list[Hit], list[str], dict[str, Any]]:
    """The secrets found, the files it could not scan (PW-SEC-102) and the summary's evidence."""
    doc = json.loads(stdout)
    hits, problems, summary = [], [], {}
    for finding in doc["findings"]:
        evidence = finding["evidence"]
        if finding["rule_id"] == "PW-SEC-101":
            hits.append(
                Hit(
                    file=finding["location"]["path"],
                    line=int(evidence["line"]),
                    kind=evidence["type"],
                    cell=evidence.get("cell"),
                    output=evidence.get("output"),
                )
            )
        elif finding["rule_id"] == "PW-SEC-102":
            problems.append(finding["message"])
        elif finding["rule_id"] == "PW-SEC-200":
            summary = evidence
    return hits, problems, summary


def _owns(secret: Planted, hit: Hit) -> bool:
    if secret.place.startswith("notebook") and hit.cell is None:
        return hit.line in secret.raw_lines
    return any(
        spot.cell == hit.cell and spot.output == hit.output and spot.first <= hit.line <= spot.last
        for spot in secret.spots
    )


def file_type(rel: str, line: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if name.startswith("requirements") or name.endswith(".lock"):
        return "lock files, requirements"
    if name.endswith(".cdx.json"):
        return "SBOMs"
    if name.endswith(".md"):
        return "docs"
    if name.endswith(".ipynb"):
        return "notebooks: image/png data" if '"image/png"' in line else "notebooks: text"
    if "/tests/" in rel:
        return "tests"
    if name.endswith(".py"):
        return "code"
    if name.endswith((".yaml", ".yml")):
        return "YAML"
    if ".env" in name or name.endswith(".env"):
        return "env files"
    if name.endswith(".csv"):
        return "CSV data"
    return "other"


def _rate(found: int, total: int) -> dict[str, Any]:
    return {"found": found, "planted": total, "recall": round(found / total, 3) if total else None}


def score(hits: list[Hit], tree: Tree) -> dict[str, Any]:
    by_file: dict[str, list[Planted]] = defaultdict(list)
    for secret in tree.planted:
        by_file[secret.file].append(secret)
    raw: dict[str, list[str]] = {}
    found: set[str] = set()
    false_places: dict[tuple[str, int | None, int | None, int], str] = {}
    false_entries = 0
    for hit in hits:
        owners = [s.ident for s in by_file.get(hit.file, []) if _owns(s, hit)]
        if owners:
            found.update(owners)
            continue
        false_entries += 1
        place = (hit.file, hit.cell, hit.output, hit.line)
        if place not in false_places:
            line = ""
            if hit.file.endswith(".ipynb") and hit.cell is None:
                if hit.file not in raw:
                    raw[hit.file] = (tree.root / hit.file).read_text(encoding="utf-8").splitlines()
                line = raw[hit.file][hit.line - 1] if hit.line <= len(raw[hit.file]) else ""
            false_places[place] = file_type(hit.file, line)
    groups: dict[str, dict[str, list[Planted]]] = {"kind": {}, "place": {}, "variant": {}}
    for secret in tree.planted:
        for key, value in (("kind", secret.kind), ("place", secret.place), ("variant", secret.variant)):
            groups[key].setdefault(value, []).append(secret)
    false_kinds = Counter(h.kind for h in hits if not any(_owns(s, h) for s in by_file.get(h.file, [])))
    return {
        "found": sorted(found),
        "recall": _rate(len(found), len(tree.planted)),
        "recall_by": {
            key: {
                name: _rate(sum(s.ident in found for s in group), len(group))
                for name, group in sorted(v.items())
            }
            for key, v in groups.items()
        },
        "missed": [
            {"id": s.ident, "kind": s.kind, "place": s.place, "variant": s.variant, "file": s.file}
            | {"where": [_where(spot) for spot in s.spots]}
            for s in tree.planted
            if s.ident not in found
        ],
        "false_positive_places": len(false_places),
        "false_positive_entries": false_entries,
        "false_positives_by_file_type": dict(sorted(Counter(false_places.values()).items())),
        "false_positives_by_detector": dict(sorted(false_kinds.items())),
        "false_positive_sample": [
            {"file": f, "cell": c, "output": o, "line": n, "file_type": t}
            for (f, c, o, n), t in sorted(false_places.items(), key=lambda i: (i[0][0], i[0][3]))[:60]
        ],
    }


def _where(spot: Any) -> str:
    lines = f"line {spot.first}" if spot.first == spot.last else f"lines {spot.first}-{spot.last}"
    if spot.cell is None:
        return lines
    return f"cell {spot.cell} " + ("" if spot.output is None else f"output {spot.output} ") + lines


def leaks(text: str, tree: Tree) -> dict[str, Any]:
    """Which planted values occur in `text` as written, and which as their plain SHA-1 digest."""
    clear = [s.ident for s in tree.planted if any(n in text for n in s.needles() if len(n) >= 8)]
    sha1 = [s.ident for s in tree.planted if hashlib.sha1(s.value.encode()).hexdigest() in text]  # noqa: S324  # what detect-secrets stores
    return {"in_clear": clear, "sha1": sha1, "any": bool(clear or sha1)}


def fingerprint_costs() -> dict[str, float]:
    """Seconds per guess for someone holding an output and a list of candidate values: detect-secrets'
    hashed_secret (plain SHA-1) against pipewarden's fingerprint (PBKDF2-HMAC-SHA256, see
    docs/supply-chain.md)."""
    from pipewarden.supply import secret_fingerprint

    started = time.perf_counter()
    for number in range(200_000):
        hashlib.sha1(f"candidate-{number}".encode()).hexdigest()  # noqa: S324  # the digest measured
    sha1 = (time.perf_counter() - started) / 200_000
    started = time.perf_counter()
    for number in range(20):
        secret_fingerprint("Secret Keyword", f"candidate-{number}")
    return {
        "sha1_seconds_per_guess": sha1,
        "pipewarden_seconds_per_guess": (time.perf_counter() - started) / 20,
    }


def confirmed_by_fingerprint(hits: list[Hit], text: str, tree: Tree) -> list[str]:
    """Planted values (not keys, whose identity is the whole block) a known-value guess confirms
    against pipewarden's fingerprints, under the detector type its finding names: possible for any
    unkeyed digest, only slower per guess."""
    from pipewarden.supply import secret_fingerprint

    out = []
    for secret in tree.planted:
        if secret.kind == "private-key":
            continue
        kinds = {h.kind for h in hits if h.file == secret.file and _owns(secret, h)}
        if any(secret_fingerprint(kind, secret.value) in text for kind in sorted(kinds)):
            out.append(secret.ident)
    return out


def source_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "pipewarden").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    return f"{head} (src fingerprint {digest.hexdigest()[:12]})"


def _cli(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name) or name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="about this many files (default 2000)")
    parser.add_argument("--secrets", type=int, default=60, help="planted secrets (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported")
    parser.add_argument("--no-single-core", action="store_true", help="skip detect-secrets -c 1")
    parser.add_argument("--keep", action="store_true", help="keep the generated tree and print where")
    parser.add_argument("--no-save", action="store_true", help="print only; do not write results/")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pw-secrets-bench-"))
    try:
        started = time.perf_counter()
        tree = build_tree(work, files=args.files, secrets=args.secrets, seed=args.seed)
        generated = time.perf_counter() - started
        results = run_all(tree, args)
        results["tree"]["generate_seconds"] = round(generated, 2)
    finally:
        if args.keep:
            print(f"tree kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    table = markdown(results)
    print(table)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{NAME}.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        (RESULTS / f"{NAME}.md").write_text(table + "\n", encoding="utf-8")
    return 0


def run_all(tree: Tree, args: argparse.Namespace) -> dict[str, Any]:
    detect = _cli("detect-secrets")
    tools = {
        "pipewarden": [_cli("pipewarden"), "secrets", ".", "-f", "json"],
        "detect-secrets": [detect, "scan", "--all-files", "-n", "."],
    }
    if not args.no_single_core:
        tools["detect-secrets -c 1"] = [detect, "-c", "1", "scan", "--all-files", "-n", "."]
    runs: dict[str, list[Run]] = {name: [] for name in tools}
    loads = [os.getloadavg()[0]]
    for number in range(args.repeat):
        # Alternate the order so neither tool always runs on the other's warm page cache.
        for name in list(tools) if number % 2 == 0 else list(reversed(tools)):
            runs[name].append(measure(tools[name], tree.root))
            loads.append(os.getloadavg()[0])
    per_tool: dict[str, Any] = {}
    for name, done in runs.items():
        last = done[-1]
        if name == "pipewarden":
            hits, problems, summary = pipewarden_hits(last.stdout)
        else:
            hits, problems, summary = detect_secrets_hits(last.stdout), [], {}
        output = last.stdout + last.stderr
        entry = {
            "command": " ".join(
                Path(tools[name][0]).name if i == 0 else a for i, a in enumerate(tools[name])
            ),
            "exit_codes": [r.code for r in done],
            "wall_seconds": [round(r.wall, 3) for r in done],
            "cpu_seconds": [round(r.cpu, 3) for r in done],
            "peak_rss_mib": [round(r.rss_kib / 1024, 1) for r in done],
            "median_wall_seconds": round(statistics.median(r.wall for r in done), 3),
            "median_cpu_seconds": round(statistics.median(r.cpu for r in done), 3),
            "median_peak_rss_mib": round(statistics.median(r.rss_kib for r in done) / 1024, 1),
            "findings": len(hits),
            "not_scanned": problems,
            "summary": summary,
            "leaks": leaks(output, tree),
            "same_findings_every_run": len({r.stdout if name == "pipewarden" else _results(r) for r in done})
            == 1,
        } | score(hits, tree)
        if name == "pipewarden":
            entry["confirmed_by_fingerprint_guess"] = confirmed_by_fingerprint(hits, output, tree)
        per_tool[name] = entry
    categories = Counter(file_type(rel, "") for rel in tree.files)
    return {
        "environment": {
            "machine": f"{platform.machine()} {platform.system()}",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {"pipewarden": version("pipewarden"), "detect-secrets": version("detect-secrets")},
            "pipewarden_source": source_revision(),
            "load_average_1min": {
                "before": round(loads[0], 2),
                "highest": round(max(loads), 2),
                "all": [round(x, 2) for x in loads],
            },
        },
        "parameters": {
            "files": args.files,
            "secrets": args.secrets,
            "seed": args.seed,
            "repeat": args.repeat,
        },
        "tree": {
            "files": len(tree.files),
            "bytes": tree.bytes,
            "files_by_type": dict(sorted(categories.items())),
            "kinds": list(KINDS),
            "places": list(PLACES),
            "planted": [
                {"id": s.ident, "kind": s.kind, "place": s.place, "variant": s.variant, "file": s.file}
                | {"where": [_where(spot) for spot in s.spots], "json_lines": s.raw_lines}
                for s in tree.planted
            ],
        },
        "guess_cost": fingerprint_costs(),
        "tools": per_tool,
    }


def _results(run: Run) -> str:
    """detect-secrets' results without its generation time, to compare runs."""
    return json.dumps(json.loads(run.stdout)["results"], sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())
