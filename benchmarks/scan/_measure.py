"""Run one measured scan in a fresh process and print what it cost as JSON.

The harness starts this script once per timed run. It is a separate, small
process so that `getrusage(RUSAGE_CHILDREN)` here sees only the scanner it
started: the peak resident set size of the largest child, and nothing of
the harness (which may hold a gigabyte of freshly generated tensors).
Linux keeps the pre-exec peak of a forked process in its own maxrss, which
is why the tool must not be forked straight from the harness.

Input (one JSON object on stdin; a folder scanned file by file makes an
argument list too long for argv):
  commands     list of argv lists, run one after another (a scanner that takes
               one file at a time gets one command per file)
  cwd          working directory for every command (an empty scratch folder)
  out_dir      where each command's stdout/stderr go, as out-N.txt / err-N.txt
  timeout      seconds for all commands together; past it the running one is
               killed and the run is reported as a timeout
  mem_limit    address-space limit in bytes for the commands (0: none), so a
               runaway scanner fails with MemoryError instead of taking the
               machine down

Output (stdout, JSON): wall_seconds, max_rss_kib, timed_out, and per command
its exit code (negative: killed by that signal).

Only the standard library is used, so any Python 3.11+ can run this.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    spec = json.load(sys.stdin)
    commands: list[list[str]] = spec["commands"]
    cwd = spec["cwd"]
    out_dir = Path(spec["out_dir"])
    timeout = float(spec["timeout"])
    mem_limit = int(spec.get("mem_limit", 0))
    out_dir.mkdir(parents=True, exist_ok=True)
    if mem_limit > 0:
        # Inherited by every command started below; this wrapper stays tiny.
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    codes: list[int] = []
    timed_out = False
    start = time.perf_counter()
    for i, argv in enumerate(commands):
        remaining = timeout - (time.perf_counter() - start)
        if remaining <= 0:
            timed_out = True
            break
        with (
            open(out_dir / f"out-{i}.txt", "wb") as out,
            open(out_dir / f"err-{i}.txt", "wb") as err,
        ):
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                err.write(f"cannot start {argv[0]}: {exc}\n".encode())
                codes.append(127)
                continue
            try:
                codes.append(proc.wait(timeout=remaining))
            except subprocess.TimeoutExpired:
                # Kill the whole session: some CLIs start helpers of their own.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                codes.append(-signal.SIGKILL)
                timed_out = True
                break
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump(
        {
            "wall_seconds": wall,
            "max_rss_kib": usage.ru_maxrss,  # kibibytes on Linux
            "user_seconds": usage.ru_utime,
            "system_seconds": usage.ru_stime,
            "timed_out": timed_out,
            "exit_codes": codes,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
