"""What speed.py and detection.py share: the four scanners, how each one is run,
how its exit code and output are read, and the separate competitors' venv.

How each tool's result is read (from its --help and its CLI source, for the
versions pinned in requirements-competitors.txt):

pipewarden  `pipewarden scan --format json PATH`
    exit 0 clean; 1 flagged (findings at or above medium, the default
    --fail-on); 2 error (usage or configuration). pipewarden fails closed: a
    file it cannot parse is a finding, so it lands in "flagged".
picklescan  `picklescan -p PATH`
    exit 0 clean; 1 dangerous globals found; 2 scan error. A scan error wins
    over findings in its exit code, so the summary it prints is read too:
    "Infected files: N" > 0 or "Dangerous globals: N" > 0 is "flagged" even
    with exit 2. A file that does not parse as a pickle and shows no globals
    is reported by picklescan as scanned and clean (exit 0): that counts as
    "clean", as a user would see it.
modelscan   `modelscan -p PATH -r json -o REPORT --show-skipped`
    exit 0 clean; 1 issues found; 2 scan errors (wins over issues, so the
    JSON report's total_issues is read too); 3 no supported file was scanned;
    4 usage error. 3 and 4 count as "error": the tool could not decide. The
    JSON report is asked for only to read the verdict; scanning work is the
    same as with the default console report.
fickling    `fickling --check-safety --json-output REPORT FILE`
    exit 0 "likely safe"; 1 unsafe (severity above LIKELY_SAFE); 2 the file
    does not parse as a pickle. An uncaught Python exception also exits 1,
    so a traceback on stderr makes the result "error" whatever the code. The
    CLI takes one file, not a folder: for a folder it is run once per file
    and the folder is "flagged" if any file is, else "error" if any file
    errs, else "clean".

Every tool: a run past the time limit is "timeout", a kill by a signal or an
exit code outside the list above is "crash"; both are reported as results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
WORK = HERE / ".work"
RESULTS = HERE / "results"
REQUIREMENTS = HERE / "requirements-competitors.txt"
MEASURE = HERE / "_measure.py"
COMPETITORS_ENV = "PIPEWARDEN_BENCH_COMPETITORS_VENV"
DEFAULT_COMPETITORS_VENV = WORK / "competitors-venv"
TOOLS = ("pipewarden", "picklescan", "modelscan", "fickling")
COMPETITOR_CLIS = ("picklescan", "modelscan", "fickling")

FLAGGED, CLEAN, ERROR, TIMEOUT, CRASH = "flagged", "clean", "error", "timeout", "crash"


# --------------------------------------------------------------------------- venvs


def competitors_venv(option: str | None) -> Path:
    """The competitors' venv: --competitors-venv, else $PIPEWARDEN_BENCH_COMPETITORS_VENV,
    else benchmarks/scan/.work/competitors-venv."""
    raw = option or os.environ.get(COMPETITORS_ENV) or str(DEFAULT_COMPETITORS_VENV)
    return Path(raw).expanduser().resolve()


def install_venv(venv: Path, requirements: Path) -> None:
    """Create `venv` if needed and install `requirements` into it."""
    if not (venv / "bin" / "python").exists():
        # The base interpreter, not this venv's: the new venv must not see the project's packages.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)


def report_footer(notes: object, *, heading: str, cases: list[dict[str, str]] | None = None) -> list[str]:
    """A report's closing lines: its notes under `heading` (if any), then what each case is."""
    lines: list[str] = []
    if isinstance(notes, list) and notes:
        lines += ["", f"## {heading}", ""]
        lines += [f"- {n}" for n in notes]
    if cases is not None:
        lines += ["", "Cases: " + "; ".join(f"**{c['name']}**: {c['description']}" for c in cases) + ".", ""]
    return lines


def ensure_competitors(venv: Path) -> None:
    """Create the competitors' venv from requirements-competitors.txt unless every CLI is there.

    The competitors live apart from the project's venv so that their
    dependencies (numpy pins, rich, click ...) never change what pipewarden
    runs with.
    """
    if all((venv / "bin" / name).exists() for name in COMPETITOR_CLIS):
        return
    print(f"creating the competitors' venv at {venv} ...", file=sys.stderr)
    install_venv(venv, REQUIREMENTS)
    missing = [n for n in COMPETITOR_CLIS if not (venv / "bin" / n).exists()]
    if missing:
        raise SystemExit(f"{venv}: installed, but these CLIs are missing: {', '.join(missing)}")


def default_pipewarden() -> Path:
    """The `pipewarden` beside the interpreter running the harness, else the one on PATH."""
    beside = Path(sys.executable).parent / "pipewarden"
    if beside.exists():
        return beside
    found = shutil.which("pipewarden")
    if found is None:
        raise SystemExit("pipewarden: not found beside this Python nor on PATH; pass --pipewarden")
    return Path(found)


def tool_versions(pipewarden: Path, venv: Path) -> dict[str, str]:
    """Installed versions, read from each environment's metadata (no tool is imported here)."""
    code = (
        "import importlib.metadata as m, json, sys;print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    versions: dict[str, str] = {}
    for python, names in (
        (pipewarden.parent / "python", ["pipewarden"]),
        (venv / "bin" / "python", list(COMPETITOR_CLIS)),
    ):
        if not python.exists():  # e.g. --tools pipewarden with no competitors' venv yet
            continue
        out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=True)
        versions.update(json.loads(out.stdout))
    return versions


def source_revision() -> str:
    """The repository's commit, with "+changes" when src/ differs from it (pipewarden is
    installed editable, so that is the code measured)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def source_fingerprint() -> str:
    """A short hash of every file under src/pipewarden: pipewarden is installed editable and
    others may change it while a benchmark runs, so each case records it before and after."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "src" / "pipewarden").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Run:
    """One measured invocation of a tool on one target (possibly several commands)."""

    wall_seconds: float
    max_rss_kib: int
    timed_out: bool
    exit_codes: list[int]
    stdout: list[str]
    stderr: list[str]
    out_dir: Path


def measure(commands: list[list[str]], *, timeout: float, mem_limit: int, scratch: Path) -> Run:
    """Run `commands` under a fresh _measure.py process and collect time, memory and output."""
    scratch.mkdir(parents=True, exist_ok=True)
    cwd = Path(tempfile.mkdtemp(prefix="cwd-", dir=scratch))
    out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=scratch))
    spec = {
        "commands": commands,
        "cwd": str(cwd),
        "out_dir": str(out_dir),
        "timeout": timeout,
        "mem_limit": mem_limit,
    }
    # -I: the wrapper needs the standard library only, and nothing of this venv's site.
    done = subprocess.run(
        [sys.executable, "-I", str(MEASURE)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    n = len(data["exit_codes"])

    def read(name: str) -> str:
        path = out_dir / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    run = Run(
        wall_seconds=data["wall_seconds"],
        max_rss_kib=data["max_rss_kib"],
        timed_out=data["timed_out"],
        exit_codes=data["exit_codes"],
        stdout=[read(f"out-{i}.txt") for i in range(n)],
        stderr=[read(f"err-{i}.txt") for i in range(n)],
        out_dir=out_dir,
    )
    shutil.rmtree(cwd, ignore_errors=True)
    return run


def discard(run: Run) -> None:
    shutil.rmtree(run.out_dir, ignore_errors=True)


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class Verdict:
    status: str  # FLAGGED, CLEAN, ERROR, TIMEOUT or CRASH
    detail: str = ""
    rules: tuple[str, ...] = field(default_factory=tuple)


def _tail(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text[-n:]


def _traceback(text: str) -> str | None:
    """The last line of a Python traceback in `text` (the exception), if there is one."""
    if "Traceback (most recent call last)" not in text:
        return None
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "traceback"


def _common(run: Run) -> Verdict | None:
    if run.timed_out:
        return Verdict(TIMEOUT, f"killed after {run.wall_seconds:.0f} s")
    if not run.exit_codes:
        return Verdict(ERROR, "nothing to scan")
    return None


@dataclass(frozen=True)
class Tool:
    name: str
    commands: Callable[[Path, Path], list[list[str]]]  # (target, report folder) -> argv lists
    classify: Callable[[Run, Path], Verdict]  # (run, report folder) -> verdict


def _pipewarden_verdict(run: Run, _reports: Path) -> Verdict:
    common = _common(run)
    if common:
        return common
    code = run.exit_codes[0]
    rules: tuple[str, ...] = ()
    names: list[str] = []
    try:
        findings = json.loads(run.stdout[0]).get("findings", [])
        rules = tuple(sorted({f["rule_id"] for f in findings}))
        # The globals behind pickle findings say more than the rule id alone.
        names = sorted(
            {
                str(f["evidence"]["global"])
                for f in findings
                if isinstance(f.get("evidence"), dict) and "global" in f["evidence"]
            }
        )
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        pass
    if code == 0:
        return Verdict(CLEAN, rules=rules)
    if code == 1:
        detail = ", ".join(rules) + (f": {', '.join(names)}" if names else "")
        return Verdict(FLAGGED, detail[:300], rules)
    if code == 2:
        return Verdict(ERROR, _tail(run.stderr[0]))
    return Verdict(CRASH, f"exit {code}: {_traceback(run.stderr[0]) or _tail(run.stderr[0])}")


_PS_COUNT = re.compile(r"^(Infected files|Dangerous globals|Suspicious globals): (\d+)$", re.M)
_PS_FOUND = re.compile(r"dangerous import '([^']*)' FOUND")


def _picklescan_verdict(run: Run, _reports: Path) -> Verdict:
    common = _common(run)
    if common:
        return common
    code, out = run.exit_codes[0], run.stdout[0] + run.stderr[0]
    counts = {k: int(v) for k, v in _PS_COUNT.findall(out)}
    found = sorted(set(_PS_FOUND.findall(out)))
    issues = counts.get("Infected files", 0) + counts.get("Dangerous globals", 0)
    if code in (1, 2) and issues > 0:
        return Verdict(FLAGGED, "; ".join(found)[:300] + (" (and scan error)" if code == 2 else ""))
    if code == 0:
        suspicious = counts.get("Suspicious globals", 0)
        return Verdict(CLEAN, f"{suspicious} suspicious globals" if suspicious else "")
    if code == 2:
        err = [ln for ln in out.splitlines() if "ERROR" in ln or "Exception" in ln]
        return Verdict(ERROR, _tail(err[-1] if err else out))
    return Verdict(CRASH, f"exit {code}: {_traceback(out) or _tail(out)}")


def _modelscan_verdict(run: Run, reports: Path) -> Verdict:
    common = _common(run)
    if common:
        return common
    code, out = run.exit_codes[0], run.stdout[0] + run.stderr[0]
    report: dict[str, object] = {}
    try:
        report = json.loads((reports / "modelscan.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        pass
    summary = report.get("summary", {}) if isinstance(report, dict) else {}
    issues = int(summary.get("total_issues", 0)) if isinstance(summary, dict) else 0
    errors = report.get("errors", []) if isinstance(report, dict) else []
    skipped = summary.get("skipped", {}) if isinstance(summary, dict) else {}
    n_skipped = skipped.get("total_skipped", 0) if isinstance(skipped, dict) else 0
    extra = f"{n_skipped} skipped" if n_skipped else ""
    if code in (1, 2) and issues > 0:
        ops = sorted(
            {f"{i.get('module')}.{i.get('operator')}" for i in report.get("issues", [])}  # type: ignore[union-attr]
        )
        return Verdict(FLAGGED, "; ".join(ops)[:300] + (" (and scan errors)" if code == 2 else ""))
    if code == 0:
        return Verdict(CLEAN, extra)
    if code == 2:
        first = errors[0] if isinstance(errors, list) and errors else None
        msg = json.dumps(first)[:200] if first else (_traceback(out) or _tail(out))
        return Verdict(ERROR, msg)
    if code == 3:
        return Verdict(ERROR, f"no supported file scanned ({extra or 'all skipped'})")
    if code == 4:
        return Verdict(ERROR, "usage error: " + _tail(out))
    return Verdict(CRASH, f"exit {code}: {_traceback(out) or _tail(out)}")


def _fickling_file(code: int, stderr: str) -> Verdict:
    tb = _traceback(stderr)
    if tb is not None:
        return Verdict(ERROR, f"exception: {tb}"[:200])
    if code == 0:
        return Verdict(CLEAN)
    if code == 1:
        return Verdict(FLAGGED)
    if code == 2:
        first = stderr.strip().splitlines()[0] if stderr.strip() else "not a pickle"
        return Verdict(ERROR, first[:200])
    return Verdict(CRASH, f"exit {code}")


def _fickling_verdict(run: Run, reports: Path) -> Verdict:
    common = _common(run)
    if common:
        return common
    per_file = [_fickling_file(c, e) for c, e in zip(run.exit_codes, run.stderr, strict=True)]
    n = len(per_file)
    for status in (FLAGGED, CRASH, ERROR):
        hits = [v for v in per_file if v.status == status]
        if hits:
            detail = hits[0].detail
            if status == FLAGGED:
                detail = _fickling_severity(reports)
            if n > 1:
                detail = f"{len(hits)}/{n} files {status}" + (f"; first: {detail}" if detail else "")
            return Verdict(status if status != CRASH else ERROR, detail)
    return Verdict(CLEAN, f"{n} files" if n > 1 else "")


def _fickling_severity(reports: Path) -> str:
    # --json-output appends one JSON object per pickle stream; the first word of each is enough.
    try:
        text = (reports / "fickling.json").read_text(encoding="utf-8")
    except OSError:
        return ""
    found = sorted(set(re.findall(r'"severity": "([A-Z_]+)"', text)) - {"LIKELY_SAFE"})
    return ", ".join(found)


def make_tools(pipewarden: Path, venv: Path) -> dict[str, Tool]:
    bin_dir = venv / "bin"

    def pw(target: Path, _reports: Path) -> list[list[str]]:
        return [[str(pipewarden), "scan", "--format", "json", str(target)]]

    def ps(target: Path, _reports: Path) -> list[list[str]]:
        return [[str(bin_dir / "picklescan"), "-p", str(target)]]

    def ms(target: Path, reports: Path) -> list[list[str]]:
        return [
            [
                str(bin_dir / "modelscan"),
                "-p",
                str(target),
                "-r",
                "json",
                "-o",
                str(reports / "modelscan.json"),
                "--show-skipped",
            ]
        ]

    def fk(target: Path, reports: Path) -> list[list[str]]:
        files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
        return [
            [
                str(bin_dir / "fickling"),
                "--check-safety",
                "--json-output",
                str(reports / "fickling.json"),
                str(f),
            ]
            for f in files
        ]

    return {
        "pipewarden": Tool("pipewarden", pw, _pipewarden_verdict),
        "picklescan": Tool("picklescan", ps, _picklescan_verdict),
        "modelscan": Tool("modelscan", ms, _modelscan_verdict),
        "fickling": Tool("fickling", fk, _fickling_verdict),
    }


def scan_once(
    tool: Tool, target: Path, *, timeout: float, mem_limit: int, scratch: Path
) -> tuple[Run, Verdict]:
    """Run `tool` on `target` once, measured, and read its verdict."""
    scratch.mkdir(parents=True, exist_ok=True)
    reports = Path(tempfile.mkdtemp(prefix=f"{tool.name}-", dir=scratch))
    try:
        run = measure(tool.commands(target, reports), timeout=timeout, mem_limit=mem_limit, scratch=scratch)
        verdict = tool.classify(run, reports)
        # Results are committed: keep this checkout's absolute paths out of them.
        for prefix in (str(scratch) + "/", str(REPO_ROOT) + "/"):
            verdict = dataclasses.replace(verdict, detail=verdict.detail.replace(prefix, ""))
    finally:
        shutil.rmtree(reports, ignore_errors=True)
    discard(run)
    return run, verdict


def write_outputs(
    stem: str, markdown: str, data: object, *, json_to_stdout: bool, directory: Path = RESULTS
) -> None:
    """Write <directory>/<stem>.md and .json; print the markdown (and the JSON if asked)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.md").write_text(markdown, encoding="utf-8")
    (directory / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    if json_to_stdout:
        print("```json")
        print(json.dumps(data, indent=2))
        print("```")
    else:
        print(f"JSON: {directory / (stem + '.json')}")


def profile_tables(python: Path, stats: Path) -> str:
    """The top of a cProfile dump's cumulative-time and own-time tables, read with `python`."""
    show = (
        "import pstats, sys\n"
        "s = pstats.Stats(sys.argv[1]); s.sort_stats('cumulative').print_stats(30)\n"
        "s.sort_stats('tottime').print_stats(15)\n"
    )
    return subprocess.run(
        [str(python), "-c", show, str(stats)], capture_output=True, text=True, check=False
    ).stdout
