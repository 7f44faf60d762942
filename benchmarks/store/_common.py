"""What sign.py and throughput.py share: the generated inputs, the measured child
process, the competitor's venv and the report files.

Measuring follows the scan benchmark: every run starts a fresh, small wrapper process
(_measure.py here) that starts the one command measured, so the peak RSS it reports is
that command's alone. The report helpers (write_outputs, source_revision,
source_fingerprint, default_pipewarden) are imported from benchmarks/scan/_harness.py
as `scan_harness`.

Inputs are pseudo-random bytes: the AES-256-CTR keystream under a key derived from
the file's name, so every run writes the same bytes at a few GB/s, and nothing in them
compresses or looks like a model format.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scan"))
import _harness as scan_harness  # noqa: E402  (benchmarks/scan/_harness.py)

REPO_ROOT = HERE.parent.parent
WORK = HERE / ".work"
DATA = WORK / "data"
SCRATCH = WORK / "scratch"
RESULTS = HERE / "results"
WORKER = HERE / "_worker.py"
MEASURE = HERE / "_measure.py"
REQUIREMENTS = HERE / "requirements-competitors.txt"
COMPETITORS_ENV = "PIPEWARDEN_BENCH_SIGNING_VENV"
DEFAULT_COMPETITORS_VENV = WORK / "competitors-venv"
COMPETITOR_CLI = "model_signing"
MIB = 1024 * 1024
GIB = 1024 * MIB

write_outputs = scan_harness.write_outputs


# --------------------------------------------------------------------------- environment


def competitors_venv(option: str | None) -> Path:
    """--competitors-venv, else $PIPEWARDEN_BENCH_SIGNING_VENV, else .work/competitors-venv."""
    raw = option or os.environ.get(COMPETITORS_ENV) or str(DEFAULT_COMPETITORS_VENV)
    return Path(raw).expanduser().resolve()


def ensure_competitor(venv: Path) -> Path:
    """The model_signing CLI in `venv`, creating the venv from requirements-competitors.txt if needed."""
    cli = venv / "bin" / COMPETITOR_CLI
    if cli.exists():
        return cli
    print(f"creating the competitor's venv at {venv} ...", file=sys.stderr)
    scan_harness.install_venv(venv, REQUIREMENTS)
    if not cli.exists():
        raise SystemExit(f"{venv}: installed, but {COMPETITOR_CLI} is missing")
    return cli


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options both store benchmarks take: limits per run, scale, and what happens to the inputs."""
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument(
        "--mem-limit-gib", type=float, default=16.0, help="address-space limit per run, 0 for none"
    )
    parser.add_argument("--small", action="store_true", help="1/50 scale inputs: a smoke run")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the inputs even if present")
    parser.add_argument("--keep", action="store_true", help="keep the inputs this run generated")
    parser.add_argument("--no-profile", dest="profile", action="store_false")


def package_versions(python: Path, names: list[str]) -> dict[str, str]:
    """Installed versions in the environment of `python`, from its metadata."""
    code = (
        "import importlib.metadata as m, json, sys;print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def environment(versions: dict[str, str]) -> dict[str, object]:
    """What the report says about the machine and the code measured."""
    from cryptography.hazmat.backends.openssl import backend

    return {
        "machine": platform.machine() + " " + platform.system(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "python": platform.python_version(),
        "openssl": backend.openssl_version_text(),
        "versions": versions,
        "pipewarden_source": scan_harness.source_revision(),
        "pipewarden_fingerprint": scan_harness.source_fingerprint(),
    }


def compile_pipewarden(python: Path) -> None:
    """Byte-compile the checkout's pipewarden, as pip does for an installed package: an
    editable install under PYTHONDONTWRITEBYTECODE would otherwise recompile it every run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    src = REPO_ROOT / "src" / "pipewarden"
    subprocess.run([str(python), "-m", "compileall", "-q", str(src)], check=True, env=env)


# --------------------------------------------------------------------------- inputs


def write_pseudorandom(path: Path, size: int) -> None:
    """Write `size` bytes of AES-256-CTR keystream, keyed by the file's name (same bytes every run).

    Written to a temporary name and renamed, so a file that exists is complete.
    """
    key = hashlib.sha256(b"pipewarden-bench/" + path.name.encode()).digest()
    keystream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    block = memoryview(bytes(16 * MIB))
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as out:
        left = size
        while left:
            n = min(left, len(block))
            out.write(keystream.update(block[:n]))
            left -= n
    os.replace(tmp, path)


def folder_layout(scale: float) -> list[tuple[str, int]]:
    """1,000 files of mixed sizes in 20 subfolders of 50: (relative path, size).

    Every 100th file is 8-24 MiB (10 files), every other 10th 0.5-4 MiB (90 files),
    the rest 1-128 KiB (900 files): about 400 MiB at scale 1, like a checkpoint
    folder of a few large shards, some mid-sized tensors and many small files.
    """
    rng = random.Random(0)  # noqa: S311  (file sizes, not secrets)
    layout = []
    for i in range(1000):
        if i % 100 == 0:
            size = rng.randint(8 * MIB, 24 * MIB)
        elif i % 10 == 0:
            size = rng.randint(MIB // 2, 4 * MIB)
        else:
            size = rng.randint(1024, 128 * 1024)
        layout.append((f"block_{i // 50:02d}/part_{i:04d}.bin", max(1, int(size * scale))))
    return layout


@dataclass
class Inputs:
    """The generated inputs under .work/data, and which of them this run created."""

    scale: float
    created: list[Path] = field(default_factory=list)

    @property
    def _record(self) -> Path:
        return DATA / "inputs.json"

    def _ready(self, name: str, spec: dict[str, object], path: Path, regenerate: bool) -> bool:
        record = json.loads(self._record.read_text()) if self._record.exists() else {}
        return not regenerate and record.get(name) == spec and path.exists()

    def _done(self, name: str, spec: dict[str, object]) -> None:
        record = json.loads(self._record.read_text()) if self._record.exists() else {}
        record[name] = spec
        self._record.write_text(json.dumps(record, indent=2) + "\n")

    def model_file(self, *, regenerate: bool = False) -> Path:
        """One 2 GiB file (at scale 1) named like a single-file model."""
        path = DATA / "model.safetensors"
        spec = {"bytes": int(2 * GIB * self.scale)}
        if not self._ready("model-file", spec, path, regenerate):
            path.unlink(missing_ok=True)
            print(f"generating {path.name} ({spec['bytes'] / MIB:.0f} MiB) ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            write_pseudorandom(path, spec["bytes"])
            print(f"  {time.perf_counter() - start:.1f} s", file=sys.stderr)
            self._done("model-file", spec)
            self.created.append(path)
        return path

    def model_folder(self, *, regenerate: bool = False) -> Path:
        """The 1,000-file folder of `folder_layout`."""
        path = DATA / "folder-1000"
        layout = folder_layout(self.scale)
        spec = {"files": len(layout), "bytes": sum(s for _, s in layout)}
        if not self._ready("model-folder", spec, path, regenerate):
            shutil.rmtree(path, ignore_errors=True)
            print(f"generating {path.name} ({spec['bytes'] / MIB:.0f} MiB) ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            tmp = path.with_name(path.name + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            for rel, size in layout:
                write_pseudorandom(tmp / rel, size)
            os.replace(tmp, path)
            print(f"  {time.perf_counter() - start:.1f} s", file=sys.stderr)
            self._done("model-folder", spec)
            self.created.append(path)
        return path

    def remove_created(self) -> None:
        """Delete what this run generated (inputs found at the start are left in place)."""
        record = json.loads(self._record.read_text()) if self._record.exists() else {}
        names = {DATA / "model.safetensors": "model-file", DATA / "folder-1000": "model-folder"}
        for path in self.created:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            record.pop(names.get(path, ""), None)
        if self._record.exists():
            self._record.write_text(json.dumps(record, indent=2) + "\n")


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def read_through(path: Path) -> float:
    """Read every byte of a file or folder in 1 MiB chunks (into the page cache); return seconds."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    buf = bytearray(MIB)
    start = time.perf_counter()
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass
    return time.perf_counter() - start


# --------------------------------------------------------------------------- running


# On two cores, another process busy during a run steals the second core that both tools
# hash on. A run during which the rest of the machine (kernel writeback included) used more
# than this share of one CPU, plus 50 ms, is run again.
FOREIGN_CPU_ALLOWANCE = 0.2
QUIET_CPU_SHARE = 0.1  # "quiet": the machine uses less than this share of one CPU
MAX_QUIET_WAIT = 600.0  # seconds to wait for a quiet machine before each run
MAX_TRIES = 5


@dataclass(frozen=True)
class Run:
    """One measured command: wall time from start to exit, its peak RSS, its exit and output,
    and the CPU time the rest of the machine used meanwhile (`foreign_cpu_seconds`)."""

    wall_seconds: float
    max_rss_kib: int
    timed_out: bool
    exit_code: int
    stdout: str
    stderr: str
    cpu_seconds: float  # the command's user + system time
    foreign_cpu_seconds: float
    tries: int = 1
    waited_seconds: float = 0.0

    @property
    def disturbed(self) -> bool:
        """Other processes took more CPU during the run than the allowance (see `measure`)."""
        return self.foreign_cpu_seconds > FOREIGN_CPU_ALLOWANCE * self.wall_seconds + 0.05


def cpu_busy_seconds() -> float:
    """Busy CPU time of the whole machine (all cores) since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(limit: float = MAX_QUIET_WAIT, sample: float = 0.5) -> float:
    """Wait until the machine has been quiet for `sample` seconds; return the seconds waited."""
    start = time.perf_counter()
    announced = False
    while time.perf_counter() - start < limit:
        before = cpu_busy_seconds()
        time.sleep(sample)
        if cpu_busy_seconds() - before < QUIET_CPU_SHARE * sample:
            break
        if not announced:
            print("  (waiting for other processes to leave the CPUs ...)", file=sys.stderr, flush=True)
            announced = True
    return time.perf_counter() - start


def measure_once(argv: list[str], *, timeout: float, mem_limit: int) -> Run:
    """Run one command under a fresh _measure.py process."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "cwd": str(SCRATCH), "timeout": timeout, "mem_limit": mem_limit}
    busy = cpu_busy_seconds()
    # -I: the wrapper needs the standard library only, and nothing of this venv's site.
    done = subprocess.run(
        [sys.executable, "-I", str(MEASURE)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    busy = cpu_busy_seconds() - busy
    data = json.loads(done.stdout)
    return Run(
        wall_seconds=data["wall_seconds"],
        max_rss_kib=data["max_rss_kib"],
        timed_out=data["timed_out"],
        exit_code=data["exit_code"],
        stdout=data["stdout"],
        stderr=data["stderr"],
        cpu_seconds=round(data["user_seconds"] + data["system_seconds"], 3),
        foreign_cpu_seconds=round(max(0.0, busy - data["user_seconds"] - data["system_seconds"]), 3),
    )


def measure(
    argv: list[str], *, timeout: float, mem_limit: int, before: Callable[[], object] | None = None
) -> Run:
    """Measure one command on a quiet machine: wait for quiet, run, and run again (up to
    MAX_TRIES) if other processes took CPU meanwhile. `before` runs ahead of every try
    (to undo what a previous try wrote). The last run is returned, with its tries and
    the seconds spent waiting; if every try was disturbed, `run.disturbed` says so."""
    waited, tries = 0.0, 0
    while True:
        tries += 1
        if before is not None:
            before()
        waited += wait_for_quiet()
        run = measure_once(argv, timeout=timeout, mem_limit=mem_limit)
        if not run.disturbed or tries == MAX_TRIES:
            break
        print(
            f"  (disturbed: other processes used {run.foreign_cpu_seconds:.2f} s of CPU in "
            f"{run.wall_seconds:.2f} s; running again)",
            file=sys.stderr,
            flush=True,
        )
    return dataclasses.replace(run, tries=tries, waited_seconds=round(waited, 1))


def interference(tries: list[int], disturbed: list[bool]) -> str:
    """One sentence for a report: how many runs were repeated because other processes took
    CPU meanwhile, and how many were still disturbed after MAX_TRIES."""
    repeated = sum(1 for t in tries if t > 1)
    still = sum(disturbed)
    text = (
        f"{len(tries)} measured runs; {repeated} of them were repeated because other processes used "
        f"more than {FOREIGN_CPU_ALLOWANCE:.0%} of a CPU meanwhile"
    )
    if still:
        return text + f"; **{still} were still disturbed after {MAX_TRIES} tries** (their times are high)."
    return text + "; none was left disturbed."


def worker(python: Path, *args: str) -> list[str]:
    """The argv that runs one operation of _worker.py with `python`."""
    return [str(python), str(WORKER), *args]


def worker_result(run: Run, what: str) -> dict[str, object]:
    """The JSON a worker printed; a worker that failed stops the benchmark (it is the harness's fault)."""
    if run.timed_out or run.exit_code != 0:
        raise SystemExit(f"{what}: worker failed (exit {run.exit_code}): {run.stderr[-2000:]}")
    return json.loads(run.stdout)


def profile(python: Path, args: list[str], dest: Path, *, timeout: float) -> str:
    """cProfile one worker operation and write the top of its cumulative and own-time tables
    to `dest`. Returns the path written (relative to the repository), or why not."""
    stats = dest.with_suffix(".prof")
    try:
        subprocess.run(
            worker(python, "--profile", str(stats), *args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "profile timed out"
    if not stats.exists():
        return "profile run wrote no stats"
    text = scan_harness.profile_tables(python, stats)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(strip_paths(text), encoding="utf-8")
    stats.unlink()
    return str(dest.relative_to(REPO_ROOT) if dest.is_relative_to(REPO_ROOT) else dest)


def strip_paths(text: str) -> str:
    """Results are committed: keep this checkout's absolute paths out of them."""
    for prefix in (str(DATA) + "/", str(WORK) + "/", str(REPO_ROOT) + "/"):
        text = text.replace(prefix, "")
    return text


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
