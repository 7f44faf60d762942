"""Side-by-side detection: pipewarden, picklescan, modelscan and fickling over one corpus.

    /work/venv/bin/python benchmarks/scan/detection.py

Builds the scanner corpus (tests/scan/corpus/: one malicious file per
technique, and benign files written by the real libraries) into
benchmarks/scan/.work/corpus/, runs every tool on every case's path, and
writes a detection table and a per-case matrix to stdout and to
benchmarks/scan/results/detection.md and detection.json.

Each tool's answer is read as "flagged", "clean" or "error" (timeouts and
crashes count as errors) exactly as documented in _harness.py:

- pipewarden: exit 1 flagged, 0 clean, 2 error. It fails closed, so a file it
  cannot read is flagged, not an error.
- picklescan: exit 1, or a summary with infected files or dangerous globals
  (even under exit 2), is flagged; exit 0 clean; exit 2 without findings error.
  A file it cannot parse as a pickle and finds no globals in passes as clean.
- modelscan: exit 1, or a JSON report with issues (even under exit 2), is
  flagged; exit 0 clean; exit 2 without issues, 3 (no supported file) and 4
  error.
- fickling: exit 1 flagged, 0 clean, 2 error; a Python traceback is an
  error whatever the exit code. One run per file; a folder is flagged if any
  of its files is.

Columns of the summary, per tool: share of malicious cases flagged, passed as
clean (missed) and errored; share of benign cases flagged (false alarms) and
errored; and errors over all cases. Cases whose builder needs a module this
Python lacks are left out by the corpus itself and listed in the JSON.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import _harness as h

CORPUS_DIR = h.WORK / "corpus"
SCRATCH = h.WORK / "scratch-detection"


def load_corpus_module(spec: str) -> ModuleType:
    """Import the corpus: a dotted module name under the repository root, or a .py path."""
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        loaded = importlib.util.spec_from_file_location("bench_corpus", path)
        if loaded is None or loaded.loader is None:
            raise SystemExit(f"{spec}: cannot import this file")
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
        return module
    sys.path.insert(0, str(h.REPO_ROOT))
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise SystemExit(f"{spec}: the corpus module is not there ({exc})") from exc


def _pct(n: int, total: int) -> str:
    return f"{n}/{total} ({100 * n / total:.0f}%)" if total else "-"


_MARK = {
    (True, h.FLAGGED): "flagged",
    (True, h.CLEAN): "**missed**",
    (False, h.CLEAN): "clean",
    (False, h.FLAGGED): "**false alarm**",
}


def _cell(malicious: bool, status: str) -> str:
    return _MARK.get((malicious, status), status)


def summarize(rows: list[dict[str, object]], tools: list[str]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    mal = [r for r in rows if r["malicious"]]
    ben = [r for r in rows if not r["malicious"]]
    for tool in tools:

        def count(group: list[dict[str, object]], *statuses: str, tool: str = tool) -> int:
            return sum(1 for r in group if r["results"][tool]["status"] in statuses)  # type: ignore[index]

        errs = (h.ERROR, h.TIMEOUT, h.CRASH)
        out[tool] = {
            "malicious": len(mal),
            "malicious_flagged": count(mal, h.FLAGGED),
            "malicious_clean": count(mal, h.CLEAN),
            "malicious_error": count(mal, *errs),
            "benign": len(ben),
            "benign_flagged": count(ben, h.FLAGGED),
            "benign_clean": count(ben, h.CLEAN),
            "benign_error": count(ben, *errs),
            "error": count(rows, *errs),
            "timeout": count(rows, h.TIMEOUT),
        }
    return out


def render(data: dict[str, object]) -> str:
    versions = data["versions"]
    summary = data["summary"]
    rows = data["cases"]
    tools = data["tools"]
    assert isinstance(versions, dict) and isinstance(summary, dict)
    assert isinstance(rows, list) and isinstance(tools, list)
    n_mal = sum(1 for r in rows if r["malicious"])
    lines = [
        "# Scanner detection, side by side",
        "",
        f"Corpus: `{data['corpus_module']}`, {n_mal} malicious and {len(rows) - n_mal} benign "
        f"cases, every tool on the same files in the same run (time limit "
        f"{data['timeout']:.0f} s per scan; pipewarden source {data['pipewarden_source']}, "
        f"fingerprint {data['pipewarden_fingerprint']}). "
        "How each tool's exit code and output are read: "
        "see the docstring of benchmarks/scan/_harness.py.",
        "",
        "| tool | version | malicious flagged | malicious passed as clean | malicious errors "
        "| benign flagged | benign errors | scan errors (all cases) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tool in tools:
        s = summary[tool]
        lines.append(
            f"| {tool} | {versions.get(tool, '?')} "
            f"| {_pct(s['malicious_flagged'], s['malicious'])} "
            f"| {_pct(s['malicious_clean'], s['malicious'])} "
            f"| {_pct(s['malicious_error'], s['malicious'])} "
            f"| {_pct(s['benign_flagged'], s['benign'])} "
            f"| {_pct(s['benign_error'], s['benign'])} "
            f"| {_pct(s['error'], s['malicious'] + s['benign'])} |"
        )
    skipped = data.get("skipped_cases")
    if isinstance(skipped, list) and skipped:
        lines += ["", f"Left out (builder needs a missing module): {', '.join(skipped)}."]
    lines += [
        "",
        "## Per case",
        "",
        "| case | technique | kind | " + " | ".join(tools) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in tools) + " |",
    ]
    for r in rows:
        kind = "malicious" if r["malicious"] else "benign"
        cells = [_cell(bool(r["malicious"]), r["results"][t]["status"]) for t in tools]
        lines.append(f"| {r['name']} | {r['technique']} | {kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Details of misses, false alarms and errors",
        "",
    ]
    for tool in tools:
        notes = []
        for r in rows:
            res = r["results"][tool]
            wrong = (r["malicious"] and res["status"] != h.FLAGGED) or (
                not r["malicious"] and res["status"] != h.CLEAN
            )
            if wrong:
                detail = str(res["detail"]).replace("|", "/")[:160]
                notes.append(f"  - {r['name']}: {res['status']}" + (f": {detail}" if detail else ""))
        lines.append(f"- **{tool}**: {len(notes)} case(s)")
        lines += notes
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--competitors-venv",
        help=f"venv holding the competitors' CLIs (default: ${h.COMPETITORS_ENV}, else "
        f"{h.DEFAULT_COMPETITORS_VENV}); created from requirements-competitors.txt if missing",
    )
    parser.add_argument(
        "--pipewarden", type=Path, help="the pipewarden CLI (default: the one beside this Python)"
    )
    parser.add_argument("--tools", nargs="+", choices=h.TOOLS, default=list(h.TOOLS))
    parser.add_argument(
        "--corpus-module",
        default="tests.scan.corpus",
        help="module with write_corpus(dest) (dotted name under the repo root, or a .py path)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per scan")
    parser.add_argument("--mem-limit-gib", type=float, default=16.0)
    parser.add_argument("--json-stdout", action="store_true", help="also print the JSON")
    args = parser.parse_args(argv)

    venv = h.competitors_venv(args.competitors_venv)
    if set(args.tools) & set(h.COMPETITOR_CLIS):
        h.ensure_competitors(venv)
    pipewarden = args.pipewarden or h.default_pipewarden()
    versions = h.tool_versions(pipewarden, venv)
    all_tools = h.make_tools(pipewarden, venv)
    tools = [n for n in h.TOOLS if n in args.tools]
    mem_limit = int(args.mem_limit_gib * 1024**3)

    corpus = load_corpus_module(args.corpus_module)
    shutil.rmtree(CORPUS_DIR, ignore_errors=True)
    CORPUS_DIR.mkdir(parents=True)
    built = corpus.write_corpus(CORPUS_DIR)
    every = [c.name for c in corpus.malicious_cases() + corpus.benign_cases()]
    built_names = {case.name for case, _ in built}
    print(f"corpus: {len(built)} cases in {CORPUS_DIR}", file=sys.stderr)

    fingerprint = h.source_fingerprint()
    rows: list[dict[str, object]] = []
    for case, path in built:
        results: dict[str, dict[str, object]] = {}
        for name in tools:
            run, verdict = h.scan_once(
                all_tools[name], path, timeout=args.timeout, mem_limit=mem_limit, scratch=SCRATCH
            )
            results[name] = {
                "status": verdict.status,
                "detail": verdict.detail,
                "exit_codes": sorted(set(run.exit_codes)),
                "seconds": round(run.wall_seconds, 2),
            }
        print(
            f"  {case.name:<36} " + " ".join(f"{n}={results[n]['status']:<8}" for n in tools),
            file=sys.stderr,
            flush=True,
        )
        rows.append(
            {
                "name": case.name,
                "technique": case.technique,
                "malicious": case.malicious,
                "path": str(path.relative_to(CORPUS_DIR)),
                "results": results,
            }
        )
    shutil.rmtree(SCRATCH, ignore_errors=True)
    if h.source_fingerprint() != fingerprint:
        fingerprint += " -> " + h.source_fingerprint() + " (src changed during the run)"
    data: dict[str, object] = {
        "corpus_module": args.corpus_module,
        "timeout": args.timeout,
        "tools": tools,
        "versions": {n: versions.get(n, "?") for n in tools},
        "pipewarden_source": h.source_revision(),
        "pipewarden_fingerprint": fingerprint,
        "skipped_cases": [n for n in every if n not in built_names],
        "summary": summarize(rows, tools),
        "cases": rows,
    }
    h.write_outputs("detection", render(data), data, json_to_stdout=args.json_stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
